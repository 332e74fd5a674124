//! Keeping a conversation inside the model's context window: when it grows
//! near the limit, older turns are replaced by a summary the model writes.

use crate::conversation::{Block, Message, ModelRequest, Role};

/// Characters per token, roughly, for budgeting before the provider counts.
const CHARS_PER_TOKEN: u64 = 4;
/// Messages kept verbatim at the end.
const KEEP_RECENT: usize = 4;

/// An estimate of the tokens `request` takes.
pub fn estimate_tokens(request: &ModelRequest) -> u64 {
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.description.len() + t.parameters.to_string().len())
        .sum();
    let chars =
        request.system.len() + tools + request.messages.iter().map(Message::size).sum::<usize>();
    chars as u64 / CHARS_PER_TOKEN + 1
}

/// Whether a request of `estimate` tokens should be summarised first: more
/// than three quarters of what the window leaves after the reply.
pub fn needs_summary(estimate: u64, context_tokens: u64, max_output: u64) -> bool {
    estimate > context_tokens.saturating_sub(max_output) / 4 * 3
}

/// Where to cut: messages before the index are summarised. Always an
/// assistant turn (so tool calls and their results stay together) after the
/// first message; `None` when too little would go.
pub fn cut_point(messages: &[Message]) -> Option<usize> {
    let latest = messages.len().checked_sub(KEEP_RECENT)?;
    (2..=latest)
        .rev()
        .find(|&i| messages[i].role == Role::Assistant)
}

/// The turns before `cut` as plain text, for the summariser.
pub fn transcript(messages: &[Message], per_block: usize) -> String {
    let mut out = String::new();
    for message in messages {
        let who = match message.role {
            Role::User => "USER",
            Role::Assistant => "ASSISTANT",
        };
        for block in &message.content {
            let line = match block {
                Block::Text { text } => format!("{who}: {text}"),
                Block::ToolCall(call) => {
                    format!("{who} calls {}({})", call.name, call.arguments)
                }
                Block::ToolResult {
                    content, is_error, ..
                } => format!(
                    "TOOL {}: {content}",
                    if *is_error { "error" } else { "result" }
                ),
            };
            out.push_str(&crate::tools::truncate(&line, per_block));
            out.push('\n');
        }
    }
    out
}

/// The instructions for the summarising call.
pub const SUMMARY_SYSTEM: &str = "You summarise the work of a coding agent so far, for the agent \
itself to continue from. Keep: the task, files read and changed (with the exact changes that \
matter), commands run and their results, errors met, decisions made and what is left to do. Be \
concise; plain text.";

/// The first message after summarising: the task again, and the summary.
pub fn summarised_start(task: &str, summary: &str) -> Message {
    Message::user(format!(
        "{task}\n\n[Earlier turns were summarised to fit the context window.]\nSummary of the work so far:\n{summary}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ToolCall;

    fn assistant() -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolCall(ToolCall {
                id: "1".into(),
                name: "read_file".into(),
                arguments: "{}".into(),
            })],
        }
    }

    fn result() -> Message {
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                call_id: "1".into(),
                content: "text".into(),
                is_error: false,
            }],
        }
    }

    #[test]
    fn the_cut_keeps_calls_with_their_results() {
        let mut messages = vec![Message::user("task")];
        for _ in 0..5 {
            messages.push(assistant());
            messages.push(result());
        }
        let cut = cut_point(&messages).unwrap();
        assert_eq!(messages[cut].role, Role::Assistant);
        assert!(messages.len() - cut >= KEEP_RECENT);
        assert!(cut_point(&messages[..3]).is_none());
    }

    #[test]
    fn the_threshold_leaves_room_for_the_reply() {
        assert!(!needs_summary(1000, 10_000, 2000));
        assert!(needs_summary(6001, 10_000, 2000));
    }

    #[test]
    fn the_transcript_names_who_did_what() {
        let text = transcript(&[Message::user("fix it"), assistant(), result()], 100);
        assert!(text.contains("USER: fix it"));
        assert!(text.contains("ASSISTANT calls read_file({})"));
        assert!(text.contains("TOOL result: text"));
    }
}
