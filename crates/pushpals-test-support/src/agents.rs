//! The pinned external agents that `.ci/run` installs (see
//! `.ci/agent-versions`), found where it put them.

use std::path::{Path, PathBuf};

/// The program of the pinned agent `name`, as `.ci/run` installed it into
/// `~/.cache/pushpals/agents/<name>-<version>` (or `$PUSHPALS_AGENTS_DIR`):
/// `node_modules/.bin/<program>` for npm, `bin/<program>` for pip.
/// `workspace` is the repository's root, where `.ci/agent-versions` is.
/// Panics, saying how to install it, when it is missing.
pub fn installed_agent(workspace: &Path, name: &str, program: &str) -> PathBuf {
    let versions = std::fs::read_to_string(workspace.join(".ci/agent-versions"))
        .unwrap_or_else(|e| panic!("cannot read .ci/agent-versions: {e}"));
    let version = versions
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&name))
        .and_then(|words| words.get(3).map(|v| (*v).to_owned()))
        .unwrap_or_else(|| panic!("{name} is not in .ci/agent-versions"));
    let dir = std::env::var_os("PUSHPALS_AGENTS_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/pushpals/agents")
        },
        PathBuf::from,
    );
    let root = dir.join(format!("{name}-{version}"));
    let npm = root.join("node_modules/.bin").join(program);
    let path = if npm.exists() {
        npm
    } else {
        root.join("bin").join(program)
    };
    assert!(
        path.exists(),
        "{} is missing: run .ci/run (its agents stage installs the pinned agents)",
        path.display()
    );
    path
}
