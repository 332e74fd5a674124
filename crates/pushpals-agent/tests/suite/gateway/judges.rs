//! Agents' tool calls judged through the gateway: Claude Code's hook and the generic endpoint.

use super::*;
use pushpals_test_support::ScriptedModel;
use serde_json::{Value, json};
use std::sync::Arc;

/// Denies `git push`, allows the rest, and remembers what it was asked.
struct Strict(std::sync::Mutex<Vec<String>>);

impl pushpals_agent::Judge for Strict {
    fn judge(&self, tool: pushpals_agent::ToolUse) -> pushpals_agent::gateway::JudgeFuture {
        let command = tool.input["command"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.0
            .lock()
            .unwrap()
            .push(format!("{}:{command}", tool.tool));
        Box::pin(async move {
            if command.starts_with("git push") {
                pushpals_agent::Verdict::Deny("pushing is the orchestrator's job".into())
            } else {
                pushpals_agent::Verdict::Allow("policy allows it".into())
            }
        })
    }
}

#[tokio::test]
async fn the_claude_code_hook_gets_the_tasks_judges_verdict() {
    let provider = ScriptedModel::start(vec![]).await;
    let (gateway, _calls) = Gateway::new();
    let served = serve(&gateway).await;
    let judge = Arc::new(Strict(std::sync::Mutex::new(Vec::new())));
    let token = grant(
        &gateway,
        model(Protocol::Anthropic, provider.anthropic_base()),
        budget(1_000_000),
        Some(judge.clone()),
    );
    let client = reqwest::Client::new();
    let hook = |command: &str, key: &str| {
        client
            .post(format!(
                "{}{}",
                served.url,
                pushpals_agent::external::claude_code::HOOK_PATH
            ))
            .bearer_auth(key)
            .json(&json!({
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_input": { "command": command },
            }))
            .send()
    };
    let answer: Value = hook("git push origin main", token.secret())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "deny");
    assert_eq!(
        answer["hookSpecificOutput"]["permissionDecisionReason"],
        "pushing is the orchestrator's job"
    );
    let answer: Value = hook("ls", token.secret())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "allow");
    assert_eq!(
        *judge.0.lock().unwrap(),
        ["Bash:git push origin main", "Bash:ls"]
    );
    assert_eq!(hook("ls", "ppgw-other").await.unwrap().status(), 401);
    let garbled = client
        .post(format!(
            "{}{}",
            served.url,
            pushpals_agent::external::claude_code::HOOK_PATH
        ))
        .bearer_auth(token.secret())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 400);
}

#[tokio::test]
async fn the_generic_judge_endpoint_answers_allow_or_deny() {
    let provider = ScriptedModel::start(vec![]).await;
    let (gateway, _calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = grant(
        &gateway,
        model(Protocol::Openai, provider.openai_base()),
        budget(1_000_000),
        Some(Arc::new(Strict(std::sync::Mutex::new(Vec::new())))),
    );
    let client = reqwest::Client::new();
    let url = format!("{}{}", served.url, pushpals_agent::gateway::JUDGE_PATH);
    let ask = |command: &str| {
        client
            .post(&url)
            .bearer_auth(token.secret())
            .json(&json!({ "tool": "Bash", "input": { "command": command } }))
            .send()
    };
    let denied: Value = ask("git push").await.unwrap().json().await.unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["reason"], "pushing is the orchestrator's job");
    let allowed: Value = ask("ls").await.unwrap().json().await.unwrap();
    assert_eq!(allowed["decision"], "allow");
    let garbled = client
        .post(&url)
        .bearer_auth(token.secret())
        .json(&json!({ "input": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 400);
    let anonymous = client.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}
