//! Calls passed through to a model of the agent's protocol, streamed or whole.

use super::*;
use pushpals_core::payload::CalledTool;
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::{Value, json};

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
    assert_eq!(call.detail.protocol.as_deref(), Some("anthropic"));
    assert_eq!(call.detail.asked_model.as_deref(), Some("claude-whatever"));
    assert_eq!(call.detail.status, Some(200));
    assert_eq!(call.detail.tool_calls, vec![CalledTool::named("Edit")]);
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
    let token = grant(
        &gateway,
        model(Protocol::Openai, provider.openai_base()),
        budget(1_000_000),
        None,
    );
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
    assert_eq!(call.detail.stream, Some(false));
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
async fn a_streamed_responses_call_passes_through_and_is_counted() {
    let provider = ScriptedModel::start(vec![Reply::tool("exec_command", r#"{"cmd":"ls"}"#)]).await;
    let (gateway, mut calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = grant(
        &gateway,
        model(Protocol::OpenaiResponses, provider.openai_base()),
        budget(1_000_000),
        None,
    );
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
    assert_eq!(call.detail.protocol.as_deref(), Some("openai_responses"));
    assert_eq!(
        call.detail.tool_calls,
        vec![CalledTool::named("exec_command")]
    );
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
    let token = grant(
        &gateway,
        model(Protocol::Gemini, provider.anthropic_base()),
        budget(1_000_000),
        None,
    );
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
    assert_eq!(call.detail.protocol.as_deref(), Some("gemini"));
    assert_eq!(call.detail.asked_model.as_deref(), Some("gemini-pro"));
    assert_eq!(call.detail.tool_calls, vec![CalledTool::named("read_file")]);
    assert!(call.usage.output_tokens > 0);
}
