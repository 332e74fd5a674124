//! OpenAI Chat Completions replies, whole and streamed.

use super::shared::{call_id, pieces, sse};
use serde_json::{Value, json};

pub(super) fn openai_whole(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            json!({ "id": call_id(id, i), "type": "function", "function": { "name": name, "arguments": arguments } })
        })
        .collect();
    let mut message = json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) } });
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" },
        }],
        "usage": { "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output },
    })
    .to_string()
}

pub(super) fn openai_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    let chunk = |delta: Value, finish: Value| {
        json!({ "id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk",
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    sse(
        &mut out,
        None,
        &chunk(json!({ "role": "assistant" }), Value::Null),
    );
    for piece in pieces(text, 7) {
        sse(
            &mut out,
            None,
            &chunk(json!({ "content": piece }), Value::Null),
        );
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        // The arguments arrive in several chunks, as real servers send them.
        let parts = pieces(arguments, 5);
        let first = parts.first().cloned().unwrap_or_default();
        sse(
            &mut out,
            None,
            &chunk(
                json!({ "tool_calls": [{ "index": index, "id": call_id(id, index), "type": "function",
                                          "function": { "name": name, "arguments": first } }] }),
                Value::Null,
            ),
        );
        for part in parts.iter().skip(1) {
            sse(
                &mut out,
                None,
                &chunk(
                    json!({ "tool_calls": [{ "index": index, "function": { "arguments": part } }] }),
                    Value::Null,
                ),
            );
        }
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    sse(&mut out, None, &chunk(json!({}), json!(finish)));
    sse(
        &mut out,
        None,
        &json!({ "id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk", "choices": [],
                 "usage": { "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output } }),
    );
    out.push_str("data: [DONE]\n\n");
    out
}
