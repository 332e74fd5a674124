//! An agent of one protocol reaching a model of another.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::{Value, json};

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
    let token = grant(
        &gateway,
        model(Protocol::Anthropic, provider.anthropic_base()),
        budget(1_000_000),
        None,
    );
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
        assert_eq!(call.detail.translated_to.as_deref(), Some("anthropic"));
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
