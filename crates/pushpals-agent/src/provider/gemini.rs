//! Gemini `generateContent` (`POST {base_url}/v1beta/models/{model}:
//! generateContent`, or `:streamGenerateContent?alt=sse` streamed): the
//! request body, a whole reply, and a streamed reply (each event a partial
//! `GenerateContentResponse`).

use super::stream::{Flow, Partial};
use crate::conversation::{
    Block, ModelReply, ModelRequest, Role, StopReason, TokenUsage, ToolCall,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Tool arguments as the object Gemini wants.
fn arguments_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "_unparsed": text }),
    }
}

/// The request body (the model and streaming are in the URL).
pub(crate) fn body(max_output_tokens: u64, request: &ModelRequest) -> Value {
    // Function responses name their function; remember each call's name.
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut contents = Vec::new();
    for message in &request.messages {
        let mut parts = Vec::new();
        for block in &message.content {
            match block {
                Block::Text { text } if text.is_empty() => {}
                Block::Text { text } => parts.push(json!({ "text": text })),
                Block::ToolCall(call) => {
                    names.insert(&call.id, &call.name);
                    parts.push(json!({ "functionCall": {
                        "id": call.id, "name": call.name, "args": arguments_object(&call.arguments),
                    }}));
                }
                Block::ToolResult {
                    call_id,
                    content,
                    is_error,
                } => parts.push(json!({ "functionResponse": {
                    "id": call_id,
                    "name": names.get(call_id.as_str()).copied().unwrap_or("tool"),
                    "response": if *is_error { json!({ "error": content }) } else { json!({ "output": content }) },
                }})),
            }
        }
        if parts.is_empty() {
            continue;
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        contents.push(json!({ "role": role, "parts": parts }));
    }
    let mut body = json!({
        "systemInstruction": { "parts": [{ "text": request.system }] },
        "contents": contents,
        "generationConfig": { "maxOutputTokens": max_output_tokens },
    });
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                })
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": declarations }]);
    }
    body
}

fn usage(value: &Value) -> TokenUsage {
    TokenUsage {
        input_tokens: value["promptTokenCount"].as_u64().unwrap_or(0),
        output_tokens: value["candidatesTokenCount"].as_u64().unwrap_or(0),
    }
}

fn stop_reason(finish: Option<&str>, has_calls: bool) -> StopReason {
    if has_calls {
        return StopReason::ToolUse;
    }
    match finish {
        Some("STOP") | None => StopReason::EndTurn,
        Some("MAX_TOKENS") => StopReason::MaxTokens,
        Some(_) => StopReason::Other,
    }
}

/// A reply being put together from one or more responses.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    text: String,
    calls: Vec<ToolCall>,
    finish: Option<String>,
    usage: TokenUsage,
}

impl Chunks {
    /// Takes one `GenerateContentResponse`.
    fn take(&mut self, value: &Value) -> Result<(), String> {
        if let Some(error) = value.get("error") {
            return Err(error["message"]
                .as_str()
                .unwrap_or("the model reported an error")
                .to_owned());
        }
        if value["usageMetadata"].is_object() {
            self.usage = usage(&value["usageMetadata"]);
        }
        let Some(candidate) = value["candidates"].get(0) else {
            return Ok(());
        };
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if part["thought"].as_bool() == Some(true) {
                continue;
            }
            if let Some(text) = part["text"].as_str() {
                self.text.push_str(text);
            }
            if part["functionCall"].is_object() {
                let call = &part["functionCall"];
                let index = self.calls.len();
                self.calls.push(ToolCall {
                    id: call["id"]
                        .as_str()
                        .map_or_else(|| format!("call_{index}"), str::to_owned),
                    name: call["name"]
                        .as_str()
                        .ok_or("a functionCall has no name")?
                        .to_owned(),
                    arguments: call["args"].to_string(),
                });
            }
        }
        if let Some(finish) = candidate["finishReason"].as_str() {
            self.finish = Some(finish.to_owned());
        }
        Ok(())
    }

    fn reply(self) -> ModelReply {
        let stop = stop_reason(self.finish.as_deref(), !self.calls.is_empty());
        ModelReply {
            text: self.text,
            tool_calls: self.calls,
            stop,
            usage: self.usage,
            retries: Vec::new(),
            latency_ms: 0,
        }
    }
}

/// A whole (not streamed) reply.
pub(crate) fn parse_reply(value: &Value) -> Result<ModelReply, String> {
    let mut chunks = Chunks::default();
    chunks.take(value)?;
    Ok(chunks.reply())
}

impl Partial for Chunks {
    fn feed(&mut self, _event: &str, data: &str) -> Result<Flow, String> {
        let value: Value =
            serde_json::from_str(data).map_err(|e| format!("a stream chunk is not JSON: {e}"))?;
        self.take(&value)?;
        // Gemini streams end when the connection closes.
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ModelReply, String> {
        Ok(self.reply())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::one_tool_turn;

    #[test]
    fn streamed_parts_and_usage_are_put_together() {
        let mut chunks = Chunks::default();
        for data in [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Let me "}]}}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"look."},{"functionCall":{"name":"read_file","args":{"path":"a"}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":7}}"#,
        ] {
            assert_eq!(chunks.feed("", data).unwrap(), Flow::More);
        }
        let reply = chunks.finish().unwrap();
        assert_eq!(reply.text, "Let me look.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.tool_calls[0].name, "read_file");
        assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"a"}"#);
        assert_eq!(reply.usage.output_tokens, 7);
        let mut broken = Chunks::default();
        assert!(
            broken
                .feed("", r#"{"error":{"message":"quota"}}"#)
                .unwrap_err()
                .contains("quota")
        );
    }

    #[test]
    fn function_responses_name_their_function() {
        let request = one_tool_turn();
        let body = body(100, &request);
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["name"],
            "list_files"
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "list_files"
        );
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
    }
}
