//! OpenAI Responses (`POST {base_url}/responses`): the request body, a whole
//! reply, and a streamed reply (semantic server-sent events ending with
//! `response.completed`).

use super::stream::{Flow, Partial};
use crate::config::ModelConfig;
use crate::conversation::{
    Block, ModelReply, ModelRequest, Role, StopReason, TokenUsage, ToolCall,
};
use serde_json::{Value, json};

/// The request body.
pub(crate) fn body(config: &ModelConfig, request: &ModelRequest, stream: bool) -> Value {
    let mut input = Vec::new();
    for message in &request.messages {
        for block in &message.content {
            match block {
                Block::ToolResult {
                    call_id, content, ..
                } => input.push(json!({
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": content,
                })),
                Block::ToolCall(call) => input.push(json!({
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                })),
                Block::Text { .. } => {}
            }
        }
        let text = message.text();
        if !text.is_empty() {
            let role = match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            input.push(json!({ "type": "message", "role": role, "content": text }));
        }
    }
    let mut body = json!({
        "model": config.model,
        "instructions": request.system,
        "input": input,
        "max_output_tokens": config.max_output_tokens,
        "stream": stream,
        "store": false,
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                })
            })
            .collect();
    }
    body
}

fn usage(value: &Value) -> TokenUsage {
    TokenUsage {
        input_tokens: value["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: value["output_tokens"].as_u64().unwrap_or(0),
    }
}

/// Text and tool calls of a response's `output` items.
fn read_output(output: &Value) -> Result<(String, Vec<ToolCall>), String> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in output.as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    if part["type"] == "output_text" {
                        text.push_str(part["text"].as_str().unwrap_or_default());
                    }
                }
            }
            Some("function_call") => calls.push(ToolCall {
                id: item["call_id"]
                    .as_str()
                    .or(item["id"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                name: item["name"]
                    .as_str()
                    .ok_or("a function_call item has no name")?
                    .to_owned(),
                arguments: item["arguments"].as_str().unwrap_or("{}").to_owned(),
            }),
            _ => {}
        }
    }
    Ok((text, calls))
}

/// A whole (not streamed) reply: a response object.
pub(crate) fn parse_reply(value: &Value) -> Result<ModelReply, String> {
    if value["status"] == "failed" {
        return Err(value["error"]["message"]
            .as_str()
            .unwrap_or("the response failed")
            .to_owned());
    }
    let (text, tool_calls) = read_output(&value["output"])?;
    let stop = if !tool_calls.is_empty() {
        StopReason::ToolUse
    } else if value["status"] == "incomplete" {
        StopReason::MaxTokens
    } else {
        StopReason::EndTurn
    };
    Ok(ModelReply {
        text,
        tool_calls,
        stop,
        usage: usage(&value["usage"]),
        retries: Vec::new(),
        latency_ms: 0,
    })
}

/// A streamed reply: the terminal event carries the whole response.
#[derive(Debug, Default)]
pub(crate) struct Events {
    done: Option<Value>,
}

impl Partial for Events {
    fn feed(&mut self, _event: &str, data: &str) -> Result<Flow, String> {
        let event: Value =
            serde_json::from_str(data).map_err(|e| format!("a stream event is not JSON: {e}"))?;
        match event["type"].as_str() {
            Some("response.completed") | Some("response.incomplete") => {
                self.done = Some(event["response"].clone());
                Ok(Flow::Done)
            }
            Some("response.failed") => Err(event["response"]["error"]["message"]
                .as_str()
                .unwrap_or("the response failed")
                .to_owned()),
            Some("error") => Err(event["message"]
                .as_str()
                .unwrap_or("the stream reported an error")
                .to_owned()),
            _ => Ok(Flow::More),
        }
    }

    fn finish(self) -> Result<ModelReply, String> {
        let response = self
            .done
            .ok_or("the stream ended before response.completed")?;
        parse_reply(&response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::one_tool_turn;

    #[test]
    fn a_stream_ends_with_the_whole_response() {
        let mut events = Events::default();
        let item = r#"{"type":"function_call","id":"fc_1","call_id":"call_1","name":"read_file","arguments":"{\"path\":\"a\"}"}"#;
        assert_eq!(
            events
                .feed(
                    "",
                    r#"{"type":"response.created","response":{"status":"in_progress"}}"#
                )
                .unwrap(),
            Flow::More
        );
        assert_eq!(
            events
                .feed(
                    "",
                    &format!(r#"{{"type":"response.output_item.done","item":{item}}}"#)
                )
                .unwrap(),
            Flow::More
        );
        let done = format!(
            r#"{{"type":"response.completed","response":{{"status":"completed","output":[{{"type":"message","content":[{{"type":"output_text","text":"Reading."}}]}},{item}],"usage":{{"input_tokens":9,"output_tokens":4}}}}}}"#
        );
        assert_eq!(events.feed("", &done).unwrap(), Flow::Done);
        let reply = events.finish().unwrap();
        assert_eq!(reply.text, "Reading.");
        assert_eq!(reply.tool_calls[0].id, "call_1");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.usage.output_tokens, 4);
        let mut failed = Events::default();
        assert!(
            failed
                .feed(
                    "",
                    r#"{"type":"response.failed","response":{"error":{"message":"overloaded"}}}"#
                )
                .unwrap_err()
                .contains("overloaded")
        );
        assert!(Events::default().finish().is_err());
    }

    #[test]
    fn the_body_carries_calls_and_their_outputs_as_items() {
        let config: ModelConfig = serde_json::from_value(json!({
            "protocol": "openai_responses", "base_url": "http://x/v1", "model": "m",
        }))
        .unwrap();
        let request = one_tool_turn();
        let body = body(&config, &request, true);
        assert_eq!(body["instructions"], "be brief");
        let types: Vec<&str> = body["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["message", "function_call", "function_call_output"]);
        assert_eq!(body["tools"][0]["name"], "list_files");
    }
}
