//! The worker's system prompt: its task, scope and checks, the repository's
//! layout and the repository's own instructions for agents.

use crate::tools::confine::Root;

/// Files where repositories keep instructions for coding agents.
pub const INSTRUCTION_FILES: [&str; 3] =
    ["AGENTS.md", "CLAUDE.md", ".github/copilot-instructions.md"];
/// Most bytes taken from one instruction file.
const MAX_INSTRUCTIONS: usize = 8 * 1024;
/// Most entries of the layout shown.
const MAX_LAYOUT: usize = 200;

/// What the worker is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Brief {
    /// The task's title.
    pub title: String,
    /// The request in full.
    pub prompt: String,
    /// Files and directories to stay within.
    pub scope: Vec<String>,
    /// How to tell it is done.
    pub acceptance: Vec<String>,
    /// The repository's checks: name and command line.
    pub checks: Vec<(String, String)>,
}

/// Builds the system prompt for `brief` in the worktree `root`.
pub fn system_prompt(brief: &Brief, root: &Root) -> String {
    let mut out = String::from(
        "You are a careful software engineer working in a git worktree of the person's repository. \
         Make the smallest change that does the task, keep the code's style, and run the relevant \
         tests with run_command before you finish. Paths are relative to the repository root. \
         Commands run in a sandbox without network; policy may refuse a command or ask the person \
         first, and a refusal comes back as the command's result: find another way. You cannot \
         commit, push or change git settings: the orchestrator does that after review. When done, \
         call finish with a summary of what changed.\n",
    );
    out.push_str(&format!("\n# Task: {}\n{}\n", brief.title, brief.prompt));
    if !brief.scope.is_empty() {
        out.push_str(&format!("\nStay within: {}\n", brief.scope.join(", ")));
    }
    if !brief.acceptance.is_empty() {
        out.push_str("\nDone when:\n");
        for line in &brief.acceptance {
            out.push_str(&format!("- {line}\n"));
        }
    }
    if !brief.checks.is_empty() {
        out.push_str("\nAfter you finish, the orchestrator runs these checks; they must pass:\n");
        for (name, command) in &brief.checks {
            out.push_str(&format!("- {name}: `{command}`\n"));
        }
    }
    out.push_str(&format!("\n# Repository layout\n{}\n", layout(root)));
    for file in INSTRUCTION_FILES {
        if let Ok(content) = root.read(file, MAX_INSTRUCTIONS as u64 * 8) {
            let text = String::from_utf8_lossy(&content);
            out.push_str(&format!(
                "\n# The repository's instructions ({file})\n{}\n",
                crate::tools::truncate(&text, MAX_INSTRUCTIONS)
            ));
        }
    }
    out
}

/// The top two levels of the worktree, respecting `.gitignore`.
pub fn layout(root: &Root) -> String {
    let mut lines = Vec::new();
    let walk = crate::tools::walk(root, std::path::Path::new(""), Some(2));
    for entry in walk.flatten().filter(|e| e.depth() > 0) {
        if lines.len() == MAX_LAYOUT {
            lines.push("...".to_owned());
            break;
        }
        if let Ok(rel) = entry.path().strip_prefix(root.path()) {
            let dir = entry.file_type().is_some_and(|t| t.is_dir());
            lines.push(format!("{}{}", rel.display(), if dir { "/" } else { "" }));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_carries_task_checks_layout_and_instructions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("AGENTS.md"), "Use tabs.").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let prompt = system_prompt(
            &Brief {
                title: "Add a flag".into(),
                prompt: "Add --verbose".into(),
                scope: vec!["src/".into()],
                acceptance: vec!["tests pass".into()],
                checks: vec![("test".into(), "make test".into())],
            },
            &root,
        );
        for part in [
            "# Task: Add a flag",
            "Stay within: src/",
            "- tests pass",
            "`make test`",
            "src/main.rs",
            "Use tabs.",
        ] {
            assert!(prompt.contains(part), "{part} missing from:\n{prompt}");
        }
    }
}
