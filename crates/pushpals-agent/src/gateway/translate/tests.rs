//! Round trips: what the writers write, the providers' own readers read
//! back; what the providers' body builders write, the request reader reads
//! back.

use super::{read, write};
use crate::config::{ModelConfig, Protocol};
use crate::conversation::{
    Block, Message, ModelReply, ModelRequest, Role, StopReason, TokenUsage, ToolCall, ToolSpec,
};
use crate::gateway::ClientProtocol;
use crate::provider::{read_reply, wire_body};
use serde_json::json;

const PAIRS: [(ClientProtocol, Protocol); 4] = [
    (ClientProtocol::Anthropic, Protocol::Anthropic),
    (ClientProtocol::OpenaiChat, Protocol::Openai),
    (ClientProtocol::OpenaiResponses, Protocol::OpenaiResponses),
    (ClientProtocol::Gemini, Protocol::Gemini),
];

fn reply() -> ModelReply {
    ModelReply {
        text: "Reading both.".into(),
        tool_calls: vec![
            ToolCall {
                id: "call_a".into(),
                name: "read_file".into(),
                arguments: r#"{"path":"a.rs"}"#.into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "list_files".into(),
                arguments: "{}".into(),
            },
        ],
        stop: StopReason::ToolUse,
        usage: TokenUsage {
            input_tokens: 120,
            output_tokens: 30,
        },
        retries: Vec::new(),
        latency_ms: 0,
    }
}

#[tokio::test]
async fn replies_written_in_each_protocol_read_back_the_same() {
    let original = reply();
    for (client, wire) in PAIRS {
        let whole = write::whole(client, &original, "m", "id1").to_string();
        let streamed = write::stream(client, &original, "m", "id1");
        for (bytes, is_stream) in [(whole.as_bytes(), false), (streamed.as_bytes(), true)] {
            let back = read_reply(wire, is_stream, bytes)
                .await
                .unwrap_or_else(|e| panic!("{client:?} stream={is_stream}: {e}"));
            assert_eq!(back.text, original.text, "{client:?} stream={is_stream}");
            let calls: Vec<(&str, &str)> = back
                .tool_calls
                .iter()
                .map(|c| (c.name.as_str(), c.arguments.as_str()))
                .collect();
            assert_eq!(
                calls,
                [("read_file", r#"{"path":"a.rs"}"#), ("list_files", "{}")],
                "{client:?} stream={is_stream}"
            );
            assert_eq!(back.stop, StopReason::ToolUse, "{client:?}");
            assert_eq!(back.usage, original.usage, "{client:?} stream={is_stream}");
        }
    }
}

fn conversation() -> ModelRequest {
    ModelRequest {
        system: "be brief".into(),
        messages: vec![
            Message::user("read a.rs"),
            Message {
                role: Role::Assistant,
                content: vec![
                    Block::Text {
                        text: "Reading.".into(),
                    },
                    Block::ToolCall(ToolCall {
                        id: "call_a".into(),
                        name: "read_file".into(),
                        arguments: r#"{"path":"a.rs"}"#.into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    call_id: "call_a".into(),
                    content: "fn a() {}".into(),
                    is_error: false,
                }],
            },
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "read a file".into(),
            parameters: json!({ "type": "object", "properties": { "path": { "type": "string" } } }),
        }],
    }
}

#[test]
fn requests_built_in_each_protocol_read_back_the_same() {
    let original = conversation();
    for (client, wire) in PAIRS {
        let config: ModelConfig = serde_json::from_value(json!({
            "protocol": wire.as_str(), "base_url": "http://x", "model": "m",
        }))
        .unwrap();
        let body = wire_body(&config, &original, true);
        let back = read::request(client, &body).unwrap_or_else(|e| panic!("{client:?}: {e}"));
        assert_eq!(back.system, original.system, "{client:?}");
        assert_eq!(back.tools, original.tools, "{client:?}");
        assert_eq!(back.messages.len(), 3, "{client:?}: {:?}", back.messages);
        assert_eq!(back.messages[0].text(), "read a.rs", "{client:?}");
        assert_eq!(back.messages[1].role, Role::Assistant, "{client:?}");
        assert!(
            back.messages[1].content.iter().any(|b| matches!(b,
                Block::ToolCall(c) if c.name == "read_file" && serde_json::from_str::<serde_json::Value>(&c.arguments).unwrap() == json!({"path":"a.rs"}))),
            "{client:?}: {:?}",
            back.messages[1]
        );
        assert!(
            back.messages[2].content.iter().any(|b| matches!(b,
                Block::ToolResult { call_id, content, .. } if call_id == "call_a" && content == "fn a() {}")),
            "{client:?}: {:?}",
            back.messages[2]
        );
    }
}

#[test]
fn a_request_without_messages_is_refused() {
    for client in PAIRS.map(|(c, _)| c) {
        assert!(read::request(client, &json!({})).is_err(), "{client:?}");
    }
}
