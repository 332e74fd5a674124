//! The model gateway against the scripted model server: an agent's call
//! carries only its task token; the gateway puts the real key and model in,
//! streams the answer back, counts it, and refuses what it must.

use pushpals_agent::budget::Budget;
use pushpals_agent::{Gateway, GatewayCall, Issue, ModelClient, ModelConfig, Protocol};
use pushpals_core::{TaskId, Usage};
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;

fn model(protocol: Protocol, base_url: String) -> Arc<ModelClient> {
    let config = ModelConfig {
        protocol,
        base_url,
        model: "real-model-7".into(),
        // A variable every test process has, standing in for the real key.
        api_key_env: Some("PATH".into()),
        context_tokens: 100_000,
        max_output_tokens: 1000,
        input_price_per_mtok: 1.0,
        output_price_per_mtok: 1.0,
        stream: true,
        timeout_secs: 10,
        max_retries: 0,
    };
    Arc::new(ModelClient::new("worker", config).unwrap())
}

/// The gateway on a Unix socket, reached the way a sandbox reaches it: a
/// loopback port relayed to the socket.
struct Served {
    _dir: tempfile::TempDir,
    _server: pushpals_agent::GatewayServer,
    url: String,
}

async fn serve(gateway: &Arc<Gateway>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gateway.sock");
    let server = gateway.serve(&socket).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    Served {
        _dir: dir,
        _server: server,
        url,
    }
}

fn budget(max_tokens: u64) -> Budget {
    Budget {
        max_tokens,
        ..Budget::default()
    }
}

async fn next_call(calls: &mut mpsc::UnboundedReceiver<GatewayCall>) -> GatewayCall {
    tokio::time::timeout(std::time::Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_streamed_anthropic_call_passes_through_with_the_real_key_and_is_counted() {
    let provider = ScriptedModel::start(vec![Reply::text_and_tools(
        "editing",
        &[("Edit", r#"{"file_path":"a.txt"}"#)],
    )])
    .await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let task = TaskId::from_random(rand_id());
    let token = gateway
        .issue(Issue {
            task: task.clone(),
            model: model(Protocol::Anthropic, provider.anthropic_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages?beta=true", served.url))
        .header("x-api-key", token.secret())
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "some-feature")
        .json(&json!({
            "model": "claude-whatever",
            "max_tokens": 100,
            "stream": true,
            "messages": [{ "role": "user", "content": "edit a.txt" }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("message_start") && text.contains("\"Edit\""),
        "{text}"
    );

    let seen = &provider.requests()[0];
    assert_eq!(
        seen.body["model"], "real-model-7",
        "the configured model is used"
    );
    let real_key = std::env::var("PATH").unwrap();
    assert_eq!(seen.header("x-api-key"), Some(real_key.as_str()));
    assert_eq!(seen.header("anthropic-beta"), Some("some-feature"));

    let call = next_call(&mut calls).await;
    assert_eq!(call.task, task);
    assert_eq!(call.detail["protocol"], "anthropic");
    assert_eq!(call.detail["asked_model"], "claude-whatever");
    assert_eq!(call.detail["status"], 200);
    assert_eq!(call.detail["tool_calls"], json!(["Edit"]));
    assert!(call.usage.input_tokens > 0 && call.usage.output_tokens > 0);
    assert_eq!(call.usage.cost_micros, call.usage.tokens());
    assert!(String::from_utf8_lossy(&call.request).contains("edit a.txt"));
    assert!(!String::from_utf8_lossy(&call.request).contains(&real_key));
    assert_eq!(gateway.used(&token), Some(call.usage));
}

#[tokio::test]
async fn a_whole_openai_call_passes_through_and_models_lists_the_tasks_model() {
    let provider = ScriptedModel::start(vec![Reply::text("done")]).await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Openai, provider.openai_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let reply: Value = client
        .post(format!("{}/v1/chat/completions", served.url))
        .bearer_auth(token.secret())
        .json(&json!({ "model": "x", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let call = next_call(&mut calls).await;
    assert_eq!(call.detail["stream"], false);
    assert!(call.usage.output_tokens > 0);
    let models: Value = client
        .get(format!("{}/v1/models", served.url))
        .bearer_auth(token.secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "real-model-7");
}

#[tokio::test]
async fn calls_without_a_valid_token_over_budget_or_in_another_protocol_are_refused() {
    let provider = ScriptedModel::start(vec![Reply::text("one"), Reply::text("two")]).await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let client = reqwest::Client::new();
    let call = |key: &str, path: &str| {
        client
            .post(format!("{}{path}", served.url))
            .header("x-api-key", key)
            .json(&json!({ "model": "m", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
    };

    let made_up = call("ppgw-made-up", "/v1/messages").await.unwrap();
    assert_eq!(made_up.status(), 401);
    let body: Value = made_up.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let none = client
        .post(format!("{}/v1/messages", served.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);

    // A budget of one token: the first call spends it, the second is refused.
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Anthropic, provider.anthropic_base()),
            budget: budget(1),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    assert_eq!(
        call(token.secret(), "/v1/messages").await.unwrap().status(),
        200
    );
    next_call(&mut calls).await;
    let over = call(token.secret(), "/v1/messages").await.unwrap();
    assert_eq!(over.status(), 400);
    let body: Value = over.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("budget") && message.contains("tokens"),
        "{message}"
    );
    assert_eq!(provider.requests().len(), 1, "the refused call never left");

    // The agent speaks OpenAI, the model Anthropic: said plainly.
    let other = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Anthropic, provider.anthropic_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    // An empty conversation cannot be translated: said plainly.
    let crossed = client
        .post(format!("{}/v1/chat/completions", served.url))
        .bearer_auth(other.secret())
        .json(&json!({ "model": "m", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), 400);
    let text = crossed.text().await.unwrap();
    assert!(text.contains("cannot be translated"), "{text}");
    let gemini = client
        .post(format!(
            "{}/v1beta/models/m:countTokens?key={}",
            served.url,
            other.secret()
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(gemini.status(), 501);

    // A revoked token is refused.
    gateway.revoke(&other);
    assert_eq!(
        call(other.secret(), "/v1/messages").await.unwrap().status(),
        401
    );
    let lost = client
        .get(format!("{}/v2/else", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(lost.status(), 404);
}

#[tokio::test]
async fn an_unreachable_model_is_a_502_and_still_an_event() {
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Anthropic, "http://127.0.0.1:9".into()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", served.url))
        .header("x-api-key", token.secret())
        .json(&json!({ "model": "m", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be reached")
    );
    let call = next_call(&mut calls).await;
    assert!(call.detail["error"].as_str().unwrap().contains("connect"));
    assert_eq!(call.usage.model_calls, 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400() {
    let provider = ScriptedModel::start(vec![]).await;
    let (gateway, _calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Openai, provider.openai_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", served.url))
        .bearer_auth(token.secret())
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(provider.requests().is_empty());
}

fn rand_id() -> [u8; 8] {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

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
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Anthropic, provider.anthropic_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: Some(judge.clone()),
        })
        .unwrap();
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
async fn a_streamed_responses_call_passes_through_and_is_counted() {
    let provider = ScriptedModel::start(vec![Reply::tool("exec_command", r#"{"cmd":"ls"}"#)]).await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::OpenaiResponses, provider.openai_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let text = reqwest::Client::new()
        .post(format!("{}/v1/responses", served.url))
        .bearer_auth(token.secret())
        .json(&json!({ "model": "gpt-x", "stream": true, "input": [{ "type": "message", "role": "user", "content": "list" }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("response.completed") && text.contains("exec_command"),
        "{text}"
    );
    assert_eq!(provider.requests()[0].body["model"], "real-model-7");
    let call = next_call(&mut calls).await;
    assert_eq!(call.detail["protocol"], "openai_responses");
    assert_eq!(call.detail["tool_calls"], json!(["exec_command"]));
    assert!(call.usage.output_tokens > 0);
}

#[tokio::test]
async fn a_streamed_gemini_call_passes_through_with_the_model_in_the_path() {
    let provider = ScriptedModel::start(vec![Reply::text_and_tools(
        "Reading.",
        &[("read_file", r#"{"path":"a"}"#)],
    )])
    .await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Gemini, provider.anthropic_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1beta/models/gemini-pro:streamGenerateContent?alt=sse",
            served.url
        ))
        .header("x-goog-api-key", token.secret())
        .json(&json!({ "contents": [{ "role": "user", "parts": [{ "text": "read a" }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("functionCall") && text.contains("usageMetadata"),
        "{text}"
    );
    let seen = &provider.requests()[0];
    assert_eq!(
        seen.body["model"], "real-model-7",
        "the configured model's path"
    );
    assert_eq!(seen.body["stream"], true);
    assert_eq!(
        seen.header("x-goog-api-key"),
        Some(std::env::var("PATH").unwrap().as_str())
    );
    let call = next_call(&mut calls).await;
    assert_eq!(call.detail["protocol"], "gemini");
    assert_eq!(call.detail["asked_model"], "gemini-pro");
    assert_eq!(call.detail["tool_calls"], json!(["read_file"]));
    assert!(call.usage.output_tokens > 0);
}

#[tokio::test]
async fn an_openai_agent_reaches_an_anthropic_model_through_translation() {
    let provider = ScriptedModel::start(vec![
        Reply::text_and_tools("Reading.", &[("read_file", r#"{"path":"a.rs"}"#)]),
        Reply::text("It defines a."),
        Reply::error(403, "no access to this model"),
    ])
    .await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Anthropic, provider.anthropic_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let chat = |body: Value| {
        client
            .post(format!("{}/v1/chat/completions", served.url))
            .bearer_auth(token.secret())
            .json(&body)
            .send()
    };
    let tools = json!([{ "type": "function", "function": { "name": "read_file",
        "description": "read", "parameters": { "type": "object" } } }]);
    // Whole: the tool call comes back as OpenAI tool_calls.
    let first: Value = chat(json!({ "model": "gpt-x", "tools": tools,
            "messages": [{ "role": "system", "content": "be brief" }, { "role": "user", "content": "what is in a.rs?" }] }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let call = &first["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "read_file");
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let sent = &provider.requests()[0];
    assert_eq!(sent.path, "/v1/messages", "the model got its own protocol");
    assert_eq!(sent.body["system"], "be brief");
    assert_eq!(sent.body["model"], "real-model-7");
    // Streamed: the tool's result goes back as an Anthropic tool_result.
    let call_id = call["id"].as_str().unwrap();
    let streamed = chat(
        json!({ "model": "gpt-x", "stream": true, "tools": tools, "messages": [
            { "role": "user", "content": "what is in a.rs?" },
            { "role": "assistant", "content": null, "tool_calls": [call] },
            { "role": "tool", "tool_call_id": call_id, "content": "fn a() {}" } ] }),
    )
    .await
    .unwrap();
    assert!(
        streamed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = streamed.text().await.unwrap();
    assert!(
        text.contains("It defines a.") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    let sent = &provider.requests()[1];
    assert_eq!(
        sent.body["messages"][2]["content"][0]["type"],
        "tool_result"
    );
    assert_eq!(
        sent.body["messages"][2]["content"][0]["tool_use_id"],
        call_id
    );
    for _ in 0..2 {
        let call = next_call(&mut calls).await;
        assert_eq!(call.detail["translated_to"], "anthropic");
        assert!(call.usage.output_tokens > 0);
    }
    // The model's refusal comes back with its status, in the agent's shape.
    let refused =
        chat(json!({ "model": "gpt-x", "messages": [{ "role": "user", "content": "hi" }] }))
            .await
            .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no access")
    );
}

#[tokio::test]
async fn the_generic_judge_endpoint_answers_allow_or_deny() {
    let provider = ScriptedModel::start(vec![]).await;
    let (gateway, _calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model: model(Protocol::Openai, provider.openai_base()),
            budget: budget(1_000_000),
            used: Usage::default(),
            judge: Some(Arc::new(Strict(std::sync::Mutex::new(Vec::new())))),
        })
        .unwrap();
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
