//! Anthropic Messages: the request body, a whole reply, and a streamed
//! reply (`message_start`, `content_block_*`, `message_delta`, ...).

use super::stream::{Flow, Partial};
use crate::config::ModelConfig;
use crate::conversation::{
    Block, ModelReply, ModelRequest, Role, StopReason, TokenUsage, ToolCall,
};
use serde_json::{Value, json};

/// The API version sent in `anthropic-version`.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// Tool arguments as the object Anthropic wants; malformed text the model
/// wrote earlier is kept under `_unparsed` so the history stays valid.
fn arguments_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "_unparsed": text }),
    }
}

/// The request body.
pub(crate) fn body(config: &ModelConfig, request: &ModelRequest, stream: bool) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|message| {
            let content: Vec<Value> = message
                .content
                .iter()
                .filter_map(|block| match block {
                    Block::Text { text } if text.is_empty() => None,
                    Block::Text { text } => Some(json!({ "type": "text", "text": text })),
                    Block::ToolCall(call) => Some(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": arguments_object(&call.arguments),
                    })),
                    Block::ToolResult {
                        call_id,
                        content,
                        is_error,
                    } => Some(json!({
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": content,
                        "is_error": is_error,
                    })),
                })
                .collect();
            let role = match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": content })
        })
        .collect();
    let mut body = json!({
        "model": config.model,
        "max_tokens": config.max_output_tokens,
        "system": request.system,
        "messages": messages,
        "stream": stream,
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
    }
    body
}

fn stop_reason(stop: Option<&str>) -> StopReason {
    match stop {
        Some("end_turn") | Some("stop_sequence") | None => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(_) => StopReason::Other,
    }
}

/// A whole (not streamed) reply.
pub(crate) fn parse_reply(value: &Value) -> Result<ModelReply, String> {
    let blocks = value["content"]
        .as_array()
        .ok_or("the reply has no content")?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"]
                    .as_str()
                    .ok_or("a tool_use block has no name")?
                    .to_owned(),
                arguments: block["input"].to_string(),
            }),
            _ => {}
        }
    }
    Ok(ModelReply {
        text,
        tool_calls,
        stop: stop_reason(value["stop_reason"].as_str()),
        usage: TokenUsage {
            input_tokens: value["usage"]["input_tokens"].as_u64().unwrap_or(0),
            output_tokens: value["usage"]["output_tokens"].as_u64().unwrap_or(0),
        },
        retries: Vec::new(),
        latency_ms: 0,
    })
}

/// One content block of a stream.
#[derive(Debug)]
enum Open {
    Text(String),
    Tool(ToolCall),
}

/// A streamed reply being put together.
#[derive(Debug, Default)]
pub(crate) struct Events {
    blocks: Vec<(u64, Open)>,
    stop: Option<String>,
    usage: TokenUsage,
    done: bool,
}

impl Events {
    fn block(&mut self, index: u64) -> Result<&mut Open, String> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, open)| open)
            .ok_or_else(|| format!("a delta for content block {index}, which never started"))
    }
}

impl Partial for Events {
    fn feed(&mut self, event: &str, data: &str) -> Result<Flow, String> {
        let value: Value =
            serde_json::from_str(data).map_err(|e| format!("a stream event is not JSON: {e}"))?;
        let kind = value["type"].as_str().unwrap_or(event);
        match kind {
            "message_start" => {
                let usage = &value["message"]["usage"];
                self.usage.input_tokens = usage["input_tokens"].as_u64().unwrap_or(0);
                self.usage.output_tokens = usage["output_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let index = value["index"].as_u64().unwrap_or(0);
                let block = &value["content_block"];
                let open = match block["type"].as_str() {
                    Some("tool_use") => Open::Tool(ToolCall {
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                        arguments: String::new(),
                    }),
                    _ => Open::Text(block["text"].as_str().unwrap_or_default().to_owned()),
                };
                self.blocks.push((index, open));
            }
            "content_block_delta" => {
                let index = value["index"].as_u64().unwrap_or(0);
                let delta = &value["delta"];
                match (self.block(index)?, delta["type"].as_str()) {
                    (Open::Text(text), Some("text_delta")) => {
                        text.push_str(delta["text"].as_str().unwrap_or_default());
                    }
                    (Open::Tool(call), Some("input_json_delta")) => {
                        call.arguments
                            .push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(stop) = value["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop.to_owned());
                }
                if let Some(output) = value["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = output;
                }
            }
            "message_stop" => {
                self.done = true;
                return Ok(Flow::Done);
            }
            "error" => {
                return Err(value["error"]["message"]
                    .as_str()
                    .unwrap_or("the stream reported an error")
                    .to_owned());
            }
            _ => {}
        }
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ModelReply, String> {
        if !self.done {
            return Err("the stream ended before message_stop".into());
        }
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for (_, open) in self.blocks {
            match open {
                Open::Text(part) => text.push_str(&part),
                Open::Tool(mut call) => {
                    if call.arguments.is_empty() {
                        call.arguments = "{}".into();
                    }
                    tool_calls.push(call);
                }
            }
        }
        Ok(ModelReply {
            text,
            tool_calls,
            stop: stop_reason(self.stop.as_deref()),
            usage: self.usage,
            retries: Vec::new(),
            latency_ms: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_with_text_and_a_split_tool_call() {
        let mut events = Events::default();
        let feed = [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":30,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Reading."}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"read_file","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"path\":"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"a.txt\"}"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":22}}"#,
        ];
        for data in feed {
            assert_eq!(events.feed("", data).unwrap(), Flow::More);
        }
        assert_eq!(
            events
                .feed("message_stop", r#"{"type":"message_stop"}"#)
                .unwrap(),
            Flow::Done
        );
        let reply = events.finish().unwrap();
        assert_eq!(reply.text, "Reading.");
        assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"a.txt"}"#);
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            (reply.usage.input_tokens, reply.usage.output_tokens),
            (30, 22)
        );
    }

    #[test]
    fn a_cut_stream_or_a_stray_delta_is_an_error() {
        let mut events = Events::default();
        assert!(
            events
                .feed("", r#"{"type":"content_block_delta","index":4,"delta":{"type":"text_delta","text":"x"}}"#)
                .is_err()
        );
        assert!(Events::default().finish().is_err());
    }

    #[test]
    fn malformed_history_arguments_stay_an_object() {
        assert_eq!(arguments_object("{oops"), json!({ "_unparsed": "{oops" }));
        assert_eq!(arguments_object(r#"{"a":1}"#), json!({ "a": 1 }));
    }
}
