//! Whether a path a command writes stays inside the worktree.

/// Paths outside the worktree that any command may write.
const WRITABLE_ANYWHERE: &[&str] = &["/dev/null", "/dev/stdout", "/dev/stderr"];

/// Why a write target is outside the worktree, or `None` when it stays
/// inside (relative paths that do not climb out, and the sandbox's private
/// `/tmp`). Symlinks are the sandbox's business: it makes everything outside
/// the worktree read-only.
pub fn escapes_worktree(path: &str) -> Option<String> {
    if WRITABLE_ANYWHERE.contains(&path) || path == "/tmp" || path.starts_with("/tmp/") {
        return None;
    }
    if path.starts_with('~') {
        return Some(format!(
            "{path} is in a home directory, outside the worktree"
        ));
    }
    if path.starts_with('/') {
        return Some(format!("{path} is outside the worktree"));
    }
    let mut depth: i64 = 0;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some(format!("{path} climbs out of the worktree"));
                }
            }
            _ => depth += 1,
        }
    }
    if path.split('/').any(|part| part == ".git") {
        return Some(format!(
            "{path} is git's own data, which only the orchestrator writes"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_and_outside() {
        for inside in ["a.txt", "src/x.rs", "./a", "a/../b", "/dev/null", "/tmp/x"] {
            assert_eq!(escapes_worktree(inside), None, "{inside}");
        }
        for outside in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "~/.bashrc",
            "~",
            ".git/hooks/pre-commit",
            "/tmpfoo",
        ] {
            assert!(escapes_worktree(outside).is_some(), "{outside}");
        }
    }
}
