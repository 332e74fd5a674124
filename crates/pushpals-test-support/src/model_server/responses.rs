//! OpenAI Responses replies, whole and streamed.

use super::shared::{call_id, pieces, sse};
use serde_json::{Value, json};

/// The output items of a Responses reply.
pub(super) fn responses_items(id: u64, text: &str, calls: &[(String, String)]) -> Vec<Value> {
    let mut items = Vec::new();
    if !text.is_empty() {
        items.push(json!({
            "type": "message", "id": format!("msg_{id}"), "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }],
        }));
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        items.push(json!({
            "type": "function_call", "id": format!("fc_{id}_{index}"), "call_id": call_id(id, index),
            "name": name, "arguments": arguments, "status": "completed",
        }));
    }
    items
}

pub(super) fn responses_whole(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> Value {
    json!({
        "id": format!("resp_{id}"), "object": "response", "created_at": 0, "status": "completed",
        "model": "scripted", "output": responses_items(id, text, calls),
        "usage": { "input_tokens": input, "output_tokens": output, "total_tokens": input + output },
    })
}

pub(super) fn responses_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    let mut sequence = 0u64;
    let mut event = |out: &mut String, mut data: Value| {
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        let name = data["type"].as_str().unwrap_or_default().to_owned();
        sse(out, Some(&name), &data);
    };
    let whole = responses_whole(id, text, calls, input, output);
    let mut created = whole.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    event(
        &mut out,
        json!({ "type": "response.created", "response": created }),
    );
    for (index, item) in responses_items(id, text, calls).into_iter().enumerate() {
        let mut opened = item.clone();
        if item["type"] == "message" {
            opened["content"] = json!([]);
            event(
                &mut out,
                json!({ "type": "response.output_item.added", "output_index": index, "item": opened }),
            );
            for piece in pieces(text, 7) {
                event(
                    &mut out,
                    json!({ "type": "response.output_text.delta", "output_index": index,
                                        "item_id": item["id"], "content_index": 0, "delta": piece }),
                );
            }
        } else {
            opened["arguments"] = json!("");
            event(
                &mut out,
                json!({ "type": "response.output_item.added", "output_index": index, "item": opened }),
            );
            for part in pieces(item["arguments"].as_str().unwrap_or_default(), 5) {
                event(
                    &mut out,
                    json!({ "type": "response.function_call_arguments.delta", "output_index": index,
                                        "item_id": item["id"], "delta": part }),
                );
            }
        }
        event(
            &mut out,
            json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
        );
    }
    event(
        &mut out,
        json!({ "type": "response.completed", "response": whole }),
    );
    out
}
