//! Calls the gateway refuses, each with the reason in the agent's protocol.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::{Value, json};

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
    let token = grant(
        &gateway,
        model(Protocol::Anthropic, provider.anthropic_base()),
        budget(1),
        None,
    );
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
    let refused = next_call(&mut calls).await;
    assert_eq!(
        refused.refused.as_deref(),
        Some(message),
        "the refusal is reported"
    );
    assert!(refused.request.is_empty() && refused.usage.model_calls == 0);

    // The agent speaks OpenAI, the model Anthropic: said plainly.
    let other = grant(
        &gateway,
        model(Protocol::Anthropic, provider.anthropic_base()),
        budget(1_000_000),
        None,
    );
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
    let token = grant(
        &gateway,
        model(Protocol::Anthropic, "http://127.0.0.1:9".into()),
        budget(1_000_000),
        None,
    );
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
    assert!(call.detail.error.as_deref().unwrap().contains("connect"));
    assert_eq!(call.usage.model_calls, 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400() {
    let provider = ScriptedModel::start(vec![]).await;
    let (gateway, _calls) = Gateway::new();
    let served = serve(&gateway).await;
    let token = grant(
        &gateway,
        model(Protocol::Openai, provider.openai_base()),
        budget(1_000_000),
        None,
    );
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
