//! The agent's tools: their descriptions for the model, and the ones that
//! run in-process on the worktree. `run_command`, `send_message` and
//! `finish` are the host's (see [`crate::AgentHost`]).

pub mod confine;
mod files;
mod search;

use crate::conversation::ToolSpec;
use confine::Root;
use serde_json::{Value, json};

/// What a tool gives back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// The text the model reads.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
}

impl ToolOutput {
    /// A successful result.
    pub fn ok(content: String) -> Self {
        Self {
            content,
            is_error: false,
        }
    }

    /// A failed call, with what to do about it.
    pub fn error(content: String) -> Self {
        Self {
            content,
            is_error: true,
        }
    }
}

pub(crate) fn arg_str<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

pub(crate) fn arg_u64(args: &Value, name: &str) -> Option<u64> {
    args.get(name).and_then(Value::as_u64)
}

/// Names of the tools.
pub mod names {
    /// List files.
    pub const LIST_FILES: &str = "list_files";
    /// Read a file.
    pub const READ_FILE: &str = "read_file";
    /// Search files.
    pub const SEARCH: &str = "search";
    /// Write a whole file.
    pub const WRITE_FILE: &str = "write_file";
    /// Edit by exact replacement.
    pub const EDIT_FILE: &str = "edit_file";
    /// Run a command through policy and the sandbox.
    pub const RUN_COMMAND: &str = "run_command";
    /// Message another task or the person.
    pub const SEND_MESSAGE: &str = "send_message";
    /// Say the work is done.
    pub const FINISH: &str = "finish";
}

fn spec(name: &str, description: &str, properties: Value, required: &[&str]) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }),
    }
}

/// The tools offered to a worker agent.
pub fn worker_tools() -> Vec<ToolSpec> {
    use names::*;
    let path = json!({ "type": "string", "description": "a path relative to the repository root" });
    vec![
        spec(
            LIST_FILES,
            "List files and directories under a directory (default: the repository root), skipping what .gitignore ignores.",
            json!({ "path": path }),
            &[],
        ),
        spec(
            READ_FILE,
            "Read a text file, with line numbers; optionally only lines start_line..end_line (1-based, inclusive).",
            json!({ "path": path, "start_line": { "type": "integer" }, "end_line": { "type": "integer" } }),
            &["path"],
        ),
        spec(
            SEARCH,
            "Search file contents with a regular expression (Rust regex syntax); prints path:line: text.",
            json!({ "pattern": { "type": "string" }, "path": path, "ignore_case": { "type": "boolean" } }),
            &["pattern"],
        ),
        spec(
            WRITE_FILE,
            "Write a whole file (creating it and its directories if needed).",
            json!({ "path": path, "content": { "type": "string" } }),
            &["path", "content"],
        ),
        spec(
            EDIT_FILE,
            "Replace the one occurrence of old_text in a file with new_text. Fails if old_text is missing or occurs more than once.",
            json!({ "path": path, "old_text": { "type": "string" }, "new_text": { "type": "string" } }),
            &["path", "old_text", "new_text"],
        ),
        spec(
            RUN_COMMAND,
            "Run a shell command in the repository, in a sandbox without network. Policy may refuse it or ask the person first; a refusal comes back as the result.",
            json!({ "command": { "type": "string" } }),
            &["command"],
        ),
        spec(
            SEND_MESSAGE,
            "Send a short message to the person (to = \"person\") or to another task (to = its id).",
            json!({ "to": { "type": "string" }, "text": { "type": "string" } }),
            &["to", "text"],
        ),
        spec(
            FINISH,
            "Say the task is done, with a summary of what changed and why. Call it once, last.",
            json!({ "summary": { "type": "string" } }),
            &["summary"],
        ),
    ]
}

/// Runs an in-process tool; `None` when `name` is not one of them.
pub fn run_local(root: &Root, name: &str, args: &Value) -> Option<ToolOutput> {
    use names::*;
    Some(match name {
        LIST_FILES => files::list(root, args),
        READ_FILE => files::read(root, args),
        SEARCH => search::search(root, args),
        WRITE_FILE => files::write(root, args),
        EDIT_FILE => files::edit(root, args),
        _ => return None,
    })
}

/// Walks `dir` (inside `root`) in name order, respecting `.gitignore`,
/// showing hidden files but never `.git`, following no symlink.
pub(crate) fn walk(root: &Root, dir: &std::path::Path, max_depth: Option<usize>) -> ignore::Walk {
    ignore::WalkBuilder::new(root.path().join(dir))
        .hidden(false)
        .follow_links(false)
        .require_git(false)
        .max_depth(max_depth)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
}

/// Cuts `text` to about `limit` bytes, keeping its head and tail and saying
/// what was left out.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let half = limit / 2;
    let mut head = half;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - half;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[... {} bytes left out; read a narrower range or search for what you need ...]\n{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_keeps_head_and_tail() {
        let text = format!("{}{}", "a".repeat(1000), "é".repeat(1000));
        let cut = truncate(&text, 100);
        assert!(cut.starts_with(&"a".repeat(50)));
        assert!(cut.ends_with('é'));
        assert!(cut.contains("bytes left out"));
        assert_eq!(truncate("short", 100), "short");
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        let tools = worker_tools();
        assert_eq!(tools.len(), 8);
        for tool in tools {
            assert_eq!(tool.parameters["type"], "object", "{}", tool.name);
        }
    }
}
