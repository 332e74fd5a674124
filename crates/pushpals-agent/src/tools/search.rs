//! The search tool: a regular expression over the worktree's files,
//! respecting `.gitignore`, through ripgrep's own crates.

use super::confine::Root;
use super::{ToolOutput, arg_str};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, sinks::UTF8};
use serde_json::Value;

/// Most matching lines shown.
const MAX_MATCHES: usize = 200;
/// Longest line shown.
const MAX_LINE: usize = 300;

/// `search {pattern, path?, ignore_case?}`: `path:line: text` per match.
pub(super) fn search(root: &Root, args: &Value) -> ToolOutput {
    let Some(pattern) = arg_str(args, "pattern") else {
        return ToolOutput::error("search needs a `pattern` (a regular expression)".into());
    };
    let path = arg_str(args, "path").unwrap_or(".");
    let rel = match root.check_dir(path) {
        Ok(rel) => rel,
        Err(error) => return ToolOutput::error(error.to_string()),
    };
    let matcher = match RegexMatcherBuilder::new()
        .case_insensitive(args["ignore_case"].as_bool().unwrap_or(false))
        .build(pattern)
    {
        Ok(matcher) => matcher,
        Err(error) => {
            return ToolOutput::error(format!("search: the pattern is not a valid regex: {error}"));
        }
    };
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(0))
        .line_number(true)
        .build();
    let mut hits = Vec::new();
    let mut more = 0usize;
    for entry in super::walk(root, &rel, None).flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(shown) = entry.path().strip_prefix(root.path()) else {
            continue;
        };
        let shown = shown.to_string_lossy().into_owned();
        // Opened beneath the worktree again: the walk saw a path, the read
        // must not follow anything swapped in since.
        let Ok(file) = root.open_file(&shown) else {
            continue;
        };
        let _ = searcher.search_file(
            &matcher,
            &file,
            UTF8(|line, text| {
                if hits.len() >= MAX_MATCHES {
                    more += 1;
                    return Ok(true);
                }
                let mut text = text.trim_end().to_owned();
                if text.len() > MAX_LINE {
                    let mut end = MAX_LINE;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                    text.push_str(" …");
                }
                hits.push(format!("{shown}:{line}: {text}"));
                Ok(true)
            }),
        );
    }
    if hits.is_empty() {
        return ToolOutput::ok(format!("no match for {pattern:?}"));
    }
    let mut text = hits.join("\n");
    if more > 0 {
        text.push_str(&format!(
            "\n[{more} more matches not shown; narrow the pattern or the path]"
        ));
    }
    ToolOutput::ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_matches_with_line_numbers_and_skips_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "skip.txt\n").unwrap();
        std::fs::write(dir.path().join("a.rs"), "fn alpha() {}\nfn beta() {}\n").unwrap();
        std::fs::write(dir.path().join("skip.txt"), "fn alpha\n").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let out = search(
            &root,
            &json!({ "pattern": "fn (alpha|BETA)", "ignore_case": true }),
        );
        assert_eq!(out.content, "a.rs:1: fn alpha() {}\na.rs:2: fn beta() {}");
        assert!(search(&root, &json!({ "pattern": "(" })).is_error);
        assert!(search(&root, &json!({ "pattern": "x", "path": "/etc" })).is_error);
        assert!(
            search(&root, &json!({ "pattern": "zzz" }))
                .content
                .starts_with("no match")
        );
    }
}
