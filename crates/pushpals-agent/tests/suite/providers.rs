//! Both wire protocols against the scripted model server: streaming and
//! whole replies, tool calls, retries and refusals.

use pushpals_agent::conversation::{Message, ModelRequest, StopReason, ToolSpec};
use pushpals_agent::{ModelClient, ModelConfig, Protocol, ProviderError};
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::json;

fn config(protocol: Protocol, base_url: String, stream: bool) -> ModelConfig {
    ModelConfig {
        protocol,
        base_url,
        model: "scripted-1".into(),
        // A variable every test process has, standing in for a key.
        api_key_env: Some("PATH".into()),
        context_tokens: 100_000,
        max_output_tokens: 1000,
        input_price_per_mtok: 2.0,
        output_price_per_mtok: 10.0,
        stream,
        timeout_secs: 10,
        max_retries: 2,
    }
}

fn request() -> ModelRequest {
    ModelRequest {
        system: "be brief".into(),
        messages: vec![Message::user("list and read")],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "read".into(),
            parameters: json!({ "type": "object", "properties": {} }),
        }],
    }
}

#[tokio::test]
async fn openai_streams_parallel_tool_calls() {
    let server = ScriptedModel::start(vec![Reply::text_and_tools(
        "Looking.",
        &[
            ("list_files", "{}"),
            ("read_file", r#"{"path":"src/lib.rs"}"#),
        ],
    )])
    .await;
    let client = ModelClient::new(
        "strong",
        config(Protocol::Openai, server.openai_base(), true),
    )
    .unwrap();
    let reply = client.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Looking.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    let names: Vec<&str> = reply.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["list_files", "read_file"]);
    assert_eq!(reply.tool_calls[1].arguments, r#"{"path":"src/lib.rs"}"#);
    assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0);

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert!(sent.header("authorization").unwrap().starts_with("Bearer "));
    assert_eq!(sent.body["model"], "scripted-1");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.body["tools"][0]["function"]["name"], "read_file");
}

#[tokio::test]
async fn openai_whole_replies_work_too() {
    let server = ScriptedModel::start(vec![Reply::text("done")]).await;
    let client = ModelClient::new(
        "fast",
        config(Protocol::Openai, server.openai_base(), false),
    )
    .unwrap();
    let reply = client.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "done");
    assert_eq!(reply.stop, StopReason::EndTurn);
    assert_eq!(server.requests()[0].body["stream"], false);
}

#[tokio::test]
async fn anthropic_streams_and_answers_whole() {
    let server = ScriptedModel::start(vec![
        Reply::text_and_tools("Reading.", &[("read_file", r#"{"path":"a.txt"}"#)]),
        Reply::text("All done."),
    ])
    .await;
    let streaming = ModelClient::new(
        "strong",
        config(Protocol::Anthropic, server.anthropic_base(), true),
    )
    .unwrap();
    let reply = streaming.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Reading.");
    assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"a.txt"}"#);
    assert_eq!(reply.stop, StopReason::ToolUse);
    let whole = ModelClient::new(
        "strong",
        config(Protocol::Anthropic, server.anthropic_base(), false),
    )
    .unwrap();
    assert_eq!(whole.complete(&request()).await.unwrap().text, "All done.");

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert!(sent.header("x-api-key").is_some());
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["system"], "be brief");
    assert_eq!(sent.body["tools"][0]["input_schema"]["type"], "object");
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_wait_it_asks_for() {
    let server = ScriptedModel::start(vec![
        Reply::error(429, "slow down").retry_after("0"),
        Reply::error(503, "overloaded").retry_after("0"),
        Reply::text("fine now"),
    ])
    .await;
    let client =
        ModelClient::new("fast", config(Protocol::Openai, server.openai_base(), true)).unwrap();
    let reply = client.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "fine now");
    assert_eq!(reply.retries.len(), 2);
    assert!(
        reply.retries[0].contains("429: slow down"),
        "{:?}",
        reply.retries
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_keeps_the_providers_message() {
    let server = ScriptedModel::start(vec![
        Reply::error(401, "invalid x-api-key"),
        Reply::text("never reached"),
    ])
    .await;
    let client = ModelClient::new(
        "strong",
        config(Protocol::Anthropic, server.anthropic_base(), true),
    )
    .unwrap();
    let error = client.complete(&request()).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Rejected {
            model: "strong".into(),
            status: 401,
            message: "invalid x-api-key".into()
        }
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_give_up_after_the_configured_retries() {
    let server = ScriptedModel::start(vec![
        Reply::error(500, "boom").retry_after("0"),
        Reply::error(500, "boom").retry_after("0"),
        Reply::error(500, "still boom").retry_after("0"),
        Reply::text("too late"),
    ])
    .await;
    let client = ModelClient::new(
        "fast",
        config(Protocol::Openai, server.openai_base(), false),
    )
    .unwrap();
    let error = client.complete(&request()).await.unwrap_err();
    assert!(
        matches!(&error, ProviderError::GaveUp { attempts: 3, last, .. } if last.contains("still boom")),
        "{error}"
    );
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn a_missing_key_or_a_dead_server_is_a_clear_error() {
    let mut missing = config(Protocol::Openai, "http://127.0.0.1:9/v1".into(), true);
    missing.api_key_env = Some("PUSHPALS_TEST_SURELY_UNSET_KEY".into());
    let error = ModelClient::new("fast", missing).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("PUSHPALS_TEST_SURELY_UNSET_KEY that should hold its API key is not set")
    );

    // Nothing listens on the discard port: a connection failure, retried,
    // then reported.
    let mut dead = config(Protocol::Openai, "http://127.0.0.1:9/v1".into(), true);
    dead.max_retries = 1;
    let client = ModelClient::new("fast", dead).unwrap();
    let error = client.complete(&request()).await.unwrap_err();
    assert!(error.to_string().contains("cannot connect"), "{error}");
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let client = ModelClient::new(
        "fast",
        config(Protocol::Openai, "http://127.0.0.1:9/v1".into(), true),
    )
    .unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains("<hidden>"));
    assert!(!shown.contains(&std::env::var("PATH").unwrap()));
}

#[tokio::test]
async fn openai_responses_streamed_and_whole() {
    let server = ScriptedModel::start(vec![
        Reply::text_and_tools(
            "Looking.",
            &[
                ("list_files", "{}"),
                ("read_file", r#"{"path":"src/lib.rs"}"#),
            ],
        ),
        Reply::text("done"),
        Reply::error(401, "bad key"),
    ])
    .await;
    let streamed = ModelClient::new(
        "strong",
        config(Protocol::OpenaiResponses, server.openai_base(), true),
    )
    .unwrap();
    let reply = streamed.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Looking.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    let names: Vec<&str> = reply.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["list_files", "read_file"]);
    assert_eq!(reply.tool_calls[1].arguments, r#"{"path":"src/lib.rs"}"#);
    assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0);
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.body["instructions"], "be brief");
    assert_eq!(sent.body["tools"][0]["name"], "read_file");

    let whole = ModelClient::new(
        "fast",
        config(Protocol::OpenaiResponses, server.openai_base(), false),
    )
    .unwrap();
    assert_eq!(whole.complete(&request()).await.unwrap().text, "done");
    let refused = whole.complete(&request()).await.unwrap_err();
    assert!(
        matches!(refused, ProviderError::Rejected { status: 401, .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn gemini_streamed_and_whole() {
    let server = ScriptedModel::start(vec![
        Reply::text_and_tools(
            "Looking around.",
            &[
                ("list_files", "{}"),
                ("read_file", r#"{"path":"src/lib.rs"}"#),
            ],
        ),
        Reply::text("done"),
        Reply::error(403, "no access"),
    ])
    .await;
    let streamed = ModelClient::new(
        "strong",
        config(Protocol::Gemini, server.anthropic_base(), true),
    )
    .unwrap();
    let reply = streamed.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Looking around.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    let names: Vec<&str> = reply.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["list_files", "read_file"]);
    assert_eq!(reply.tool_calls[1].arguments, r#"{"path":"src/lib.rs"}"#);
    assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0);
    let sent = &server.requests()[0];
    assert_eq!(sent.body["model"], "scripted-1", "the model is in the path");
    assert_eq!(sent.body["stream"], true);
    assert!(sent.header("x-goog-api-key").is_some());
    assert_eq!(
        sent.body["tools"][0]["functionDeclarations"][0]["name"],
        "read_file"
    );

    let whole = ModelClient::new(
        "fast",
        config(Protocol::Gemini, server.anthropic_base(), false),
    )
    .unwrap();
    assert_eq!(whole.complete(&request()).await.unwrap().text, "done");
    let refused = whole.complete(&request()).await.unwrap_err();
    assert!(
        matches!(refused, ProviderError::Rejected { status: 403, .. }),
        "{refused}"
    );
}
