//! OpenAI-compatible Chat Completions: the request body, a whole reply, and
//! a streamed reply (server-sent `chat.completion.chunk`s).

use super::stream::{Flow, Partial};
use crate::config::ModelConfig;
use crate::conversation::{
    Block, ModelReply, ModelRequest, Role, StopReason, TokenUsage, ToolCall,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The request body.
pub(crate) fn body(config: &ModelConfig, request: &ModelRequest, stream: bool) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": request.system })];
    for message in &request.messages {
        match message.role {
            Role::User => {
                // Tool results first: they must follow the assistant's calls.
                for block in &message.content {
                    if let Block::ToolResult {
                        call_id, content, ..
                    } = block
                    {
                        messages.push(
                            json!({ "role": "tool", "tool_call_id": call_id, "content": content }),
                        );
                    }
                }
                let text = message.text();
                if !text.is_empty() {
                    messages.push(json!({ "role": "user", "content": text }));
                }
            }
            Role::Assistant => {
                let calls: Vec<Value> = message
                    .content
                    .iter()
                    .filter_map(|block| match block {
                        Block::ToolCall(call) => Some(json!({
                            "id": call.id,
                            "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments },
                        })),
                        _ => None,
                    })
                    .collect();
                let text = message.text();
                let mut turn = json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::String(text) },
                });
                if !calls.is_empty() {
                    turn["tool_calls"] = Value::Array(calls);
                }
                messages.push(turn);
            }
        }
    }
    let mut body = json!({
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_output_tokens,
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
    }
    body
}

fn stop_reason(finish: Option<&str>) -> StopReason {
    match finish {
        Some("stop") | None => StopReason::EndTurn,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some(_) => StopReason::Other,
    }
}

fn usage(value: &Value) -> TokenUsage {
    TokenUsage {
        input_tokens: value["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: value["completion_tokens"].as_u64().unwrap_or(0),
    }
}

/// A whole (not streamed) reply.
pub(crate) fn parse_reply(value: &Value) -> Result<ModelReply, String> {
    let choice = value["choices"].get(0).ok_or("the reply has no choices")?;
    let message = &choice["message"];
    let mut tool_calls = Vec::new();
    if let Some(calls) = message["tool_calls"].as_array() {
        for (index, call) in calls.iter().enumerate() {
            tool_calls.push(ToolCall {
                id: call["id"]
                    .as_str()
                    .map_or_else(|| format!("call_{index}"), str::to_owned),
                name: call["function"]["name"]
                    .as_str()
                    .ok_or("a tool call has no function name")?
                    .to_owned(),
                arguments: call["function"]["arguments"]
                    .as_str()
                    .unwrap_or("{}")
                    .to_owned(),
            });
        }
    }
    Ok(ModelReply {
        text: message["content"].as_str().unwrap_or_default().to_owned(),
        tool_calls,
        stop: stop_reason(choice["finish_reason"].as_str()),
        usage: usage(&value["usage"]),
        retries: Vec::new(),
        latency_ms: 0,
    })
}

/// A streamed reply being put together.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    text: String,
    /// Tool calls by their index; arguments arrive in pieces.
    calls: BTreeMap<u64, ToolCall>,
    finish: Option<String>,
    usage: TokenUsage,
}

impl Partial for Chunks {
    fn feed(&mut self, _event: &str, data: &str) -> Result<Flow, String> {
        if data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        let chunk: Value =
            serde_json::from_str(data).map_err(|e| format!("a stream chunk is not JSON: {e}"))?;
        if let Some(error) = chunk.get("error") {
            return Err(error["message"]
                .as_str()
                .unwrap_or("the stream reported an error")
                .to_owned());
        }
        if chunk["usage"].is_object() {
            self.usage = usage(&chunk["usage"]);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return Ok(Flow::More);
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str() {
            self.text.push_str(text);
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for (position, call) in calls.iter().enumerate() {
                let index = call["index"].as_u64().unwrap_or(position as u64);
                let entry = self.calls.entry(index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                if let Some(id) = call["id"].as_str() {
                    entry.id = id.to_owned();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    entry.name.push_str(name);
                }
                if let Some(arguments) = call["function"]["arguments"].as_str() {
                    entry.arguments.push_str(arguments);
                }
            }
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.finish = Some(finish.to_owned());
        }
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ModelReply, String> {
        let mut tool_calls = Vec::new();
        for (index, mut call) in self.calls {
            if call.name.is_empty() {
                return Err(format!("streamed tool call {index} has no name"));
            }
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            tool_calls.push(call);
        }
        Ok(ModelReply {
            text: self.text,
            tool_calls,
            stop: stop_reason(self.finish.as_deref()),
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
    fn parallel_tool_calls_with_split_arguments_are_put_together() {
        let mut chunks = Chunks::default();
        let feed = [
            r#"{"choices":[{"delta":{"role":"assistant","content":"Let me "}}]}"#,
            r#"{"choices":[{"delta":{"content":"look."}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"read_file","arguments":"{\"pa"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"list_files","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\":\"x\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}}"#,
        ];
        for data in feed {
            assert_eq!(chunks.feed("", data).unwrap(), Flow::More);
        }
        assert_eq!(chunks.feed("", "[DONE]").unwrap(), Flow::Done);
        let reply = chunks.finish().unwrap();
        assert_eq!(reply.text, "Let me look.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.tool_calls.len(), 2);
        assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"x"}"#);
        assert_eq!(reply.tool_calls[1].name, "list_files");
        assert_eq!(reply.usage.input_tokens, 12);
    }

    #[test]
    fn a_broken_chunk_is_an_error() {
        let mut chunks = Chunks::default();
        assert!(chunks.feed("", "{not json").is_err());
        assert!(
            chunks
                .feed("", r#"{"error":{"message":"overloaded"}}"#)
                .unwrap_err()
                .contains("overloaded")
        );
    }
}
