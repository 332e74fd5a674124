//! Building git invocations that cannot be made to run a repository's
//! programs.

use crate::error::{GitError, GitResult};
use std::path::Path;
use tokio::process::Command;

/// Config that would let a repository run code, overridden on every call.
/// Command-line `-c` has the highest precedence, above the repository's
/// `.git/config` and `config.worktree`.
const NEUTRALISING_CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=true",
    "core.sshCommand=false",
    "core.askPass=",
    "credential.helper=",
    "diff.external=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "gpg.program=false",
    "protocol.ext.allow=never",
    "uploadpack.packObjectsHook=",
    "checkout.workers=0",
];

/// Environment variables that would redirect git to another repository,
/// index or config; cleared on every call.
const CLEARED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "GIT_TRACE",
];

/// A git invocation in one directory, with repository-controlled programs
/// switched off. `filter_overrides` blanks the filter drivers the
/// repository's config defines.
pub(crate) fn git(dir: &Path, filter_overrides: &[String]) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(dir).arg("--no-pager");
    for setting in NEUTRALISING_CONFIG {
        command.arg("-c").arg(setting);
    }
    for setting in filter_overrides {
        command.arg("-c").arg(setting);
    }
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("GIT_EDITOR", "true")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Seconds a remote may send nothing before git gives up on it.
pub const STALL_SECS: u32 = 30;

/// `setpriv` (util-linux) on this machine's PATH, looked up once.
fn setpriv() -> Option<&'static std::path::PathBuf> {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join("setpriv"))
                .find(|candidate| candidate.is_file())
        })
        .as_ref()
}

/// A git invocation that talks to a remote (fetch, push): the person's own
/// git config (credential helpers, SSH settings) applies, but hooks and
/// fsmonitor stay off and git never prompts.
///
/// It runs under `setpriv --pdeathsig KILL` where the machine has it, so a
/// clone or fetch dies with the server instead of running on, orphaned,
/// into a directory the next start sweeps away; and it gives up when the
/// remote sends nothing for [`STALL_SECS`] seconds (a server that accepts
/// and never answers would hold it for ever), which also ends a transport
/// helper the server's death left behind.
pub(crate) fn git_remote(dir: &Path) -> Command {
    let mut command = match setpriv() {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "KILL", "--", "git"]);
            command
        }
        None => Command::new("git"),
    };
    command.arg("-C").arg(dir).arg("--no-pager").args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "http.lowSpeedLimit=1",
        "-c",
    ]);
    command.arg(format!("http.lowSpeedTime={STALL_SECS}"));
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Hides `user:password@` in URLs of git's messages, so credentials never
/// reach errors, events or logs.
pub(crate) fn hide_credentials(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..authority_end]);
            }
            None => out.push_str(&tail[..authority_end]),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Runs a prepared git command and returns its stdout, or a
/// [`GitError::Failed`] naming the subcommand and its stderr.
pub(crate) async fn run(mut command: Command, what: &str) -> GitResult<Vec<u8>> {
    let output = command.output().await.map_err(GitError::Spawn)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(GitError::Failed {
            command: what.to_owned(),
            status: output.status.to_string(),
            stderr: hide_credentials(String::from_utf8_lossy(&output.stderr).trim()),
        })
    }
}

/// Runs git and returns trimmed stdout as text.
pub(crate) async fn run_text(command: Command, what: &str) -> GitResult<String> {
    let stdout = run(command, what).await?;
    Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::hide_credentials;

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(
            hide_credentials(
                "fatal: unable to access 'https://bob:s3cret@example.com/r.git/': 403"
            ),
            "fatal: unable to access 'https://***@example.com/r.git/': 403"
        );
        assert_eq!(hide_credentials("no urls here"), "no urls here");
        assert_eq!(
            hide_credentials("ssh://git@host:22/x"),
            "ssh://***@host:22/x"
        );
    }
}
