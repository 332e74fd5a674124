//! The file tools: list, read, write and edit, all confined to the worktree.

use super::confine::{PathError, Root};
use super::{ToolOutput, arg_str, arg_u64};
use serde_json::Value;

/// Largest file a tool reads whole.
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Most entries `list_files` shows.
const MAX_ENTRIES: usize = 2000;

fn failed(error: PathError) -> ToolOutput {
    ToolOutput::error(error.to_string())
}

/// `list_files {path?}`: files and directories, respecting `.gitignore`.
pub(super) fn list(root: &Root, args: &Value) -> ToolOutput {
    let path = arg_str(args, "path").unwrap_or(".");
    let rel = match root.check_dir(path) {
        Ok(rel) => rel,
        Err(error) => return failed(error),
    };
    let mut entries = Vec::new();
    let mut more = 0usize;
    for entry in super::walk(root, &rel, None).flatten() {
        if entry.depth() == 0 {
            continue;
        }
        let Ok(shown) = entry.path().strip_prefix(root.path()) else {
            continue;
        };
        if entries.len() >= MAX_ENTRIES {
            more += 1;
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        entries.push(format!(
            "{}{}",
            shown.display(),
            if is_dir { "/" } else { "" }
        ));
    }
    let mut text = entries.join("\n");
    if more > 0 {
        text.push_str(&format!(
            "\n[{more} more entries not shown; list a subdirectory]"
        ));
    }
    if text.is_empty() {
        text = "(empty)".into();
    }
    ToolOutput::ok(text)
}

/// `read_file {path, start_line?, end_line?}`: the text with line numbers.
pub(super) fn read(root: &Root, args: &Value) -> ToolOutput {
    let Some(path) = arg_str(args, "path") else {
        return ToolOutput::error("read_file needs a `path`".into());
    };
    let content = match root.read(path, MAX_FILE) {
        Ok(content) => content,
        Err(error) => return failed(error),
    };
    if content.iter().take(8192).any(|&b| b == 0) {
        return ToolOutput::ok(format!(
            "{path} is a binary file of {} bytes",
            content.len()
        ));
    }
    let text = String::from_utf8_lossy(&content);
    let lines: Vec<&str> = text.lines().collect();
    let start = arg_u64(args, "start_line").unwrap_or(1).max(1) as usize;
    let end = arg_u64(args, "end_line")
        .map_or(lines.len(), |e| e as usize)
        .min(lines.len());
    if lines.is_empty() {
        return ToolOutput::ok(format!("{path} is empty"));
    }
    if start > lines.len() || start > end {
        return ToolOutput::error(format!(
            "{path} has {} lines; lines {start} to {end} are not in it",
            lines.len()
        ));
    }
    let mut out = String::new();
    for (number, line) in lines.iter().enumerate().take(end).skip(start - 1) {
        out.push_str(&format!("{:>6}\t{line}\n", number + 1));
    }
    ToolOutput::ok(out)
}

/// `write_file {path, content}`: the whole file.
pub(super) fn write(root: &Root, args: &Value) -> ToolOutput {
    let (Some(path), Some(content)) = (arg_str(args, "path"), arg_str(args, "content")) else {
        return ToolOutput::error("write_file needs `path` and `content`".into());
    };
    match root.write(path, content.as_bytes()) {
        Ok(()) => ToolOutput::ok(format!("wrote {} bytes to {path}", content.len())),
        Err(error) => failed(error),
    }
}

/// `edit_file {path, old_text, new_text}`: replaces the one place where
/// `old_text` occurs.
pub(super) fn edit(root: &Root, args: &Value) -> ToolOutput {
    let (Some(path), Some(old), Some(new)) = (
        arg_str(args, "path"),
        arg_str(args, "old_text"),
        arg_str(args, "new_text"),
    ) else {
        return ToolOutput::error("edit_file needs `path`, `old_text` and `new_text`".into());
    };
    if old.is_empty() {
        return ToolOutput::error(
            "edit_file: `old_text` is empty; use write_file to create a file".into(),
        );
    }
    let content = match root.read(path, MAX_FILE) {
        Ok(content) => content,
        Err(error) => return failed(error),
    };
    let Ok(text) = String::from_utf8(content) else {
        return ToolOutput::error(format!(
            "{path} is not UTF-8 text; edit_file cannot change it"
        ));
    };
    match text.matches(old).count() {
        0 => ToolOutput::error(format!(
            "edit_file: `old_text` was not found in {path}; read the file again and copy the text exactly (without line numbers)"
        )),
        1 => {
            let changed = text.replacen(old, new, 1);
            match root.write(path, changed.as_bytes()) {
                Ok(()) => ToolOutput::ok(format!("edited {path}")),
                Err(error) => failed(error),
            }
        }
        n => ToolOutput::error(format!(
            "edit_file: `old_text` occurs {n} times in {path}; include more surrounding lines so it is unique"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\nthree\ntwo\n").unwrap();
        std::fs::write(dir.path().join(".gitignore"), "target/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("target/junk"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "fn main() {}\n").unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn listing_respects_gitignore_and_hides_git() {
        let (_dir, root) = fixture();
        let out = list(&root, &json!({})).content;
        assert!(out.contains("a.txt") && out.contains("src/lib.rs") && out.contains(".gitignore"));
        assert!(!out.contains("target") && !out.contains(".git/"), "{out}");
        assert!(list(&root, &json!({ "path": "../" })).is_error);
    }

    #[test]
    fn reading_a_range_numbers_the_lines() {
        let (_dir, root) = fixture();
        let out = read(
            &root,
            &json!({ "path": "a.txt", "start_line": 2, "end_line": 3 }),
        );
        assert_eq!(out.content, "     2\ttwo\n     3\tthree\n");
        assert!(read(&root, &json!({ "path": "a.txt", "start_line": 9 })).is_error);
        assert!(read(&root, &json!({})).is_error);
    }

    #[test]
    fn edits_need_one_exact_match() {
        let (dir, root) = fixture();
        let missing = edit(
            &root,
            &json!({ "path": "a.txt", "old_text": "four", "new_text": "4" }),
        );
        assert!(missing.is_error && missing.content.contains("not found"));
        let twice = edit(
            &root,
            &json!({ "path": "a.txt", "old_text": "two", "new_text": "2" }),
        );
        assert!(twice.is_error && twice.content.contains("2 times"));
        let once = edit(
            &root,
            &json!({ "path": "a.txt", "old_text": "three", "new_text": "3" }),
        );
        assert!(!once.is_error, "{}", once.content);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "one\ntwo\n3\ntwo\n"
        );
        assert!(
            edit(
                &root,
                &json!({ "path": "a.txt", "old_text": "", "new_text": "x" })
            )
            .is_error
        );
    }

    #[test]
    fn writes_are_confined() {
        let (_dir, root) = fixture();
        assert!(write(&root, &json!({ "path": "/tmp/x", "content": "x" })).is_error);
        assert!(
            write(
                &root,
                &json!({ "path": ".git/hooks/pre-commit", "content": "x" })
            )
            .is_error
        );
        assert!(!write(&root, &json!({ "path": "new/file.txt", "content": "x" })).is_error);
    }
}
