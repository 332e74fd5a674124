//! Anthropic Messages replies, whole and streamed.

use super::shared::{call_id, input_object, pieces, sse};
use serde_json::{Value, json};

pub(super) fn anthropic_whole(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(json!({ "type": "text", "text": text }));
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        content.push(json!({ "type": "tool_use", "id": call_id(id, index), "name": name, "input": input_object(arguments) }));
    }
    json!({
        "id": format!("msg_{id}"), "type": "message", "role": "assistant", "content": content,
        "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
        "usage": { "input_tokens": input, "output_tokens": output },
    })
    .to_string()
}

/// One content block of an Anthropic stream: its start, deltas and stop.
pub(super) fn anthropic_block(out: &mut String, index: usize, block: Value, deltas: Vec<Value>) {
    sse(
        out,
        Some("content_block_start"),
        &json!({ "type": "content_block_start", "index": index, "content_block": block }),
    );
    for delta in deltas {
        sse(
            out,
            Some("content_block_delta"),
            &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
        );
    }
    sse(
        out,
        Some("content_block_stop"),
        &json!({ "type": "content_block_stop", "index": index }),
    );
}

pub(super) fn anthropic_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    sse(
        &mut out,
        Some("message_start"),
        &json!({ "type": "message_start", "message": { "id": format!("msg_{id}"), "type": "message", "role": "assistant",
                 "content": [], "usage": { "input_tokens": input, "output_tokens": 1 } } }),
    );
    let mut index = 0;
    if !text.is_empty() {
        let deltas = pieces(text, 7)
            .into_iter()
            .map(|piece| json!({ "type": "text_delta", "text": piece }))
            .collect();
        anthropic_block(
            &mut out,
            index,
            json!({ "type": "text", "text": "" }),
            deltas,
        );
        index += 1;
    }
    for (n, (name, arguments)) in calls.iter().enumerate() {
        let deltas = pieces(arguments, 5)
            .into_iter()
            .map(|part| json!({ "type": "input_json_delta", "partial_json": part }))
            .collect();
        let start = json!({ "type": "tool_use", "id": call_id(id, n), "name": name, "input": {} });
        anthropic_block(&mut out, index, start, deltas);
        index += 1;
    }
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    sse(
        &mut out,
        Some("message_delta"),
        &json!({ "type": "message_delta", "delta": { "stop_reason": stop }, "usage": { "output_tokens": output } }),
    );
    sse(
        &mut out,
        Some("message_stop"),
        &json!({ "type": "message_stop" }),
    );
    out
}
