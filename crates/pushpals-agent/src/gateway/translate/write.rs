//! Writing a model's reply in the protocol an agent speaks: whole, or as
//! that protocol's stream of server-sent events (sent once the reply is
//! complete).

use crate::conversation::{ModelReply, StopReason};
use crate::gateway::ClientProtocol;
use serde_json::{Value, json};

/// Tool arguments as an object (malformed text kept under `_unparsed`).
fn arguments(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "_unparsed": text }),
    }
}

/// The reply as one JSON body.
pub(crate) fn whole(protocol: ClientProtocol, reply: &ModelReply, model: &str, id: &str) -> Value {
    let (input, output) = (reply.usage.input_tokens, reply.usage.output_tokens);
    match protocol {
        ClientProtocol::Anthropic => {
            let mut content = Vec::new();
            if !reply.text.is_empty() {
                content.push(json!({ "type": "text", "text": reply.text }));
            }
            for call in &reply.tool_calls {
                content.push(
                    json!({ "type": "tool_use", "id": call.id, "name": call.name,
                                     "input": arguments(&call.arguments) }),
                );
            }
            json!({
                "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": match reply.stop {
                    StopReason::ToolUse => "tool_use",
                    StopReason::MaxTokens => "max_tokens",
                    StopReason::EndTurn | StopReason::Other => "end_turn",
                },
                "stop_sequence": null,
                "usage": { "input_tokens": input, "output_tokens": output },
            })
        }
        ClientProtocol::OpenaiChat => {
            let mut message = json!({
                "role": "assistant",
                "content": if reply.text.is_empty() { Value::Null } else { json!(reply.text) },
            });
            if !reply.tool_calls.is_empty() {
                message["tool_calls"] = reply
                    .tool_calls
                    .iter()
                    .map(|call| json!({ "id": call.id, "type": "function",
                                        "function": { "name": call.name, "arguments": call.arguments } }))
                    .collect();
            }
            json!({
                "id": id, "object": "chat.completion", "created": 0, "model": model,
                "choices": [{ "index": 0, "message": message, "finish_reason": chat_finish(reply.stop) }],
                "usage": { "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output },
            })
        }
        ClientProtocol::OpenaiResponses => json!({
            "id": id, "object": "response", "created_at": 0, "model": model,
            "status": if reply.stop == StopReason::MaxTokens { "incomplete" } else { "completed" },
            "output": response_items(reply, id),
            "usage": { "input_tokens": input, "output_tokens": output, "total_tokens": input + output },
        }),
        ClientProtocol::Gemini => {
            let mut parts = Vec::new();
            if !reply.text.is_empty() {
                parts.push(json!({ "text": reply.text }));
            }
            for call in &reply.tool_calls {
                parts.push(json!({ "functionCall": { "id": call.id, "name": call.name,
                                                     "args": arguments(&call.arguments) } }));
            }
            json!({
                "candidates": [{
                    "content": { "role": "model", "parts": parts },
                    "finishReason": if reply.stop == StopReason::MaxTokens { "MAX_TOKENS" } else { "STOP" },
                    "index": 0,
                }],
                "usageMetadata": { "promptTokenCount": input, "candidatesTokenCount": output,
                                   "totalTokenCount": input + output },
                "modelVersion": model,
            })
        }
    }
}

fn chat_finish(stop: StopReason) -> &'static str {
    match stop {
        StopReason::ToolUse => "tool_calls",
        StopReason::MaxTokens => "length",
        StopReason::EndTurn | StopReason::Other => "stop",
    }
}

fn response_items(reply: &ModelReply, id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    if !reply.text.is_empty() {
        items.push(json!({
            "type": "message", "id": format!("msg_{id}"), "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": reply.text, "annotations": [] }],
        }));
    }
    for (index, call) in reply.tool_calls.iter().enumerate() {
        items.push(json!({
            "type": "function_call", "id": format!("fc_{id}_{index}"), "call_id": call.id,
            "name": call.name, "arguments": call.arguments, "status": "completed",
        }));
    }
    items
}

fn event(out: &mut String, name: Option<&str>, data: &Value) {
    if let Some(name) = name {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

/// The reply as the protocol's stream of server-sent events.
pub(crate) fn stream(
    protocol: ClientProtocol,
    reply: &ModelReply,
    model: &str,
    id: &str,
) -> String {
    let mut out = String::new();
    let (input, output) = (reply.usage.input_tokens, reply.usage.output_tokens);
    match protocol {
        ClientProtocol::Anthropic => {
            let mut start = whole(protocol, reply, model, id);
            start["content"] = json!([]);
            start["stop_reason"] = Value::Null;
            start["usage"] = json!({ "input_tokens": input, "output_tokens": 0 });
            event(
                &mut out,
                Some("message_start"),
                &json!({ "type": "message_start", "message": start }),
            );
            let mut index = 0;
            if !reply.text.is_empty() {
                event(
                    &mut out,
                    Some("content_block_start"),
                    &json!({ "type": "content_block_start",
                    "index": index, "content_block": { "type": "text", "text": "" } }),
                );
                event(
                    &mut out,
                    Some("content_block_delta"),
                    &json!({ "type": "content_block_delta",
                    "index": index, "delta": { "type": "text_delta", "text": reply.text } }),
                );
                event(
                    &mut out,
                    Some("content_block_stop"),
                    &json!({ "type": "content_block_stop", "index": index }),
                );
                index += 1;
            }
            for call in &reply.tool_calls {
                event(
                    &mut out,
                    Some("content_block_start"),
                    &json!({ "type": "content_block_start",
                    "index": index, "content_block": { "type": "tool_use", "id": call.id, "name": call.name, "input": {} } }),
                );
                event(
                    &mut out,
                    Some("content_block_delta"),
                    &json!({ "type": "content_block_delta",
                    "index": index, "delta": { "type": "input_json_delta",
                    "partial_json": arguments(&call.arguments).to_string() } }),
                );
                event(
                    &mut out,
                    Some("content_block_stop"),
                    &json!({ "type": "content_block_stop", "index": index }),
                );
                index += 1;
            }
            let stop = whole(protocol, reply, model, id)["stop_reason"].clone();
            event(
                &mut out,
                Some("message_delta"),
                &json!({ "type": "message_delta",
                "delta": { "stop_reason": stop, "stop_sequence": null }, "usage": { "output_tokens": output } }),
            );
            event(
                &mut out,
                Some("message_stop"),
                &json!({ "type": "message_stop" }),
            );
        }
        ClientProtocol::OpenaiChat => {
            let chunk = |delta: Value, finish: Value| {
                json!({ "id": id, "object": "chat.completion.chunk",
                "created": 0, "model": model, "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
            };
            event(
                &mut out,
                None,
                &chunk(json!({ "role": "assistant", "content": "" }), Value::Null),
            );
            if !reply.text.is_empty() {
                event(
                    &mut out,
                    None,
                    &chunk(json!({ "content": reply.text }), Value::Null),
                );
            }
            for (index, call) in reply.tool_calls.iter().enumerate() {
                event(
                    &mut out,
                    None,
                    &chunk(
                        json!({ "tool_calls": [{ "index": index, "id": call.id,
                    "type": "function", "function": { "name": call.name, "arguments": call.arguments } }] }),
                        Value::Null,
                    ),
                );
            }
            event(
                &mut out,
                None,
                &chunk(json!({}), json!(chat_finish(reply.stop))),
            );
            event(
                &mut out,
                None,
                &json!({ "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [], "usage": { "prompt_tokens": input, "completion_tokens": output,
                "total_tokens": input + output } }),
            );
            out.push_str("data: [DONE]\n\n");
        }
        ClientProtocol::OpenaiResponses => {
            let done = whole(protocol, reply, model, id);
            let mut created = done.clone();
            created["status"] = json!("in_progress");
            created["output"] = json!([]);
            let mut sequence = 0;
            let mut send = |out: &mut String, mut data: Value| {
                data["sequence_number"] = json!(sequence);
                sequence += 1;
                let name = data["type"].as_str().unwrap_or_default().to_owned();
                event(out, Some(&name), &data);
            };
            send(
                &mut out,
                json!({ "type": "response.created", "response": created }),
            );
            for (index, item) in response_items(reply, id).into_iter().enumerate() {
                send(
                    &mut out,
                    json!({ "type": "response.output_item.added", "output_index": index, "item": item }),
                );
                if item["type"] == "message" {
                    send(
                        &mut out,
                        json!({ "type": "response.output_text.delta", "output_index": index,
                        "item_id": item["id"], "content_index": 0, "delta": reply.text }),
                    );
                }
                send(
                    &mut out,
                    json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
                );
            }
            send(
                &mut out,
                json!({ "type": "response.completed", "response": done }),
            );
        }
        ClientProtocol::Gemini => event(&mut out, None, &whole(protocol, reply, model, id)),
    }
    out
}
