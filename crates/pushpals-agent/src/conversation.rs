//! A provider-neutral conversation: what the agent says to a model and what
//! comes back. Each provider module translates it to its wire format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who speaks a message. The system prompt is kept apart, in
/// [`ModelRequest::system`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person, or the agent loop speaking for the tools.
    User,
    /// The model.
    Assistant,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to run.
    ToolCall(ToolCall),
    /// A tool's answer to a call.
    ToolResult {
        /// The call it answers.
        call_id: String,
        /// What the tool returned (or why it failed).
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
}

/// A tool call as the model wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed in the result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model wrote them: JSON text, possibly malformed.
    pub arguments: String,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said, in order.
    pub content: Vec<Block>,
}

impl Message {
    /// A plain text message from the user side.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }

    /// The message's text parts, joined.
    pub fn text(&self) -> String {
        // Separate blocks (a message, then the person's feedback added to
        // it) stay separate paragraphs.
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|block| match block {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n\n")
    }

    /// A rough size in characters, for the context budget.
    pub fn size(&self) -> usize {
        self.content
            .iter()
            .map(|block| match block {
                Block::Text { text } => text.len(),
                Block::ToolCall(call) => call.name.len() + call.arguments.len() + 16,
                Block::ToolResult { content, .. } => content.len() + 16,
            })
            .sum()
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema of its arguments object.
    pub parameters: Value,
}

/// One call to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// The system prompt.
    pub system: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The tools it may call.
    pub tools: Vec<ToolSpec>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tools to run.
    ToolUse,
    /// It ran out of output tokens.
    MaxTokens,
    /// Anything else the provider said.
    Other,
}

impl StopReason {
    /// Its name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::ToolUse => "tool_use",
            Self::MaxTokens => "max_tokens",
            Self::Other => "other",
        }
    }
}

/// Tokens a call used, as the provider counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

/// What a model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// Its text (may be empty when it only calls tools).
    pub text: String,
    /// The tools it calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub stop: StopReason,
    /// What it used.
    pub usage: TokenUsage,
    /// Failed attempts before this reply (rate limits, server errors).
    pub retries: Vec<String>,
    /// Milliseconds from the first attempt to the whole reply.
    pub latency_ms: u64,
}

impl ModelReply {
    /// The reply as the assistant's turn of the conversation.
    pub fn to_message(&self) -> Message {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Block::Text {
                text: self.text.clone(),
            });
        }
        content.extend(self.tool_calls.iter().cloned().map(Block::ToolCall));
        Message {
            role: Role::Assistant,
            content,
        }
    }
}

/// The text of a message's content in the wire formats: a string, or an
/// array of parts whose `text` fields are joined by newlines.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A test conversation: the user asks, the model calls `list_files`
/// (`call_1`), the tool answers `a.txt`; system prompt "be brief".
#[cfg(test)]
pub(crate) fn one_tool_turn() -> ModelRequest {
    ModelRequest {
        system: "be brief".into(),
        messages: vec![
            Message::user("go"),
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "list_files".into(),
                    arguments: "{}".into(),
                })],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    call_id: "call_1".into(),
                    content: "a.txt".into(),
                    is_error: false,
                }],
            },
        ],
        tools: vec![ToolSpec {
            name: "list_files".into(),
            description: "list".into(),
            parameters: serde_json::json!({ "type": "object" }),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_blocks_stay_separate_paragraphs() {
        let mut message = Message::user("Add a bar module.");
        message.content.push(Block::Text {
            text: "[message] the person's feedback on your last run: also a test".into(),
        });
        assert_eq!(
            message.text(),
            "Add a bar module.\n\n[message] the person's feedback on your last run: also a test"
        );
    }
}
