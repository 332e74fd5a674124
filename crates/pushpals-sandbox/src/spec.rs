//! What to run and what came of it.

use std::path::PathBuf;
use std::time::Duration;

/// One command line to run.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The command line, run by `/bin/sh -c`.
    pub command_line: String,
    /// The directory it runs in.
    pub cwd: PathBuf,
    /// The wall-time limit.
    pub timeout: Duration,
    /// Extra environment variables on top of the scrubbed base.
    pub env: Vec<(String, String)>,
    /// Directories the command may read but not write (the repository's
    /// git directory, so `git status` works in the worktree).
    pub read_only_paths: Vec<PathBuf>,
    /// Network granted: the Unix socket of the proxy the command reaches
    /// the network through. `None`: no network at all.
    pub network_proxy: Option<PathBuf>,
    /// The model gateway: the Unix socket of the orchestrator's gateway,
    /// reached inside the sandbox at [`crate::GATEWAY_URL`] and nowhere
    /// else. `None`: no gateway.
    pub gateway: Option<PathBuf>,
    /// A private home: a directory bound writable at the sandbox's `$HOME`,
    /// where an agent keeps its own configuration. `None`: an empty home.
    pub home: Option<PathBuf>,
    /// A structured session: the Unix socket the command's standard input
    /// and output are connected to (an agent speaking the Agent Client
    /// Protocol). `None`: no standard input, output streamed as usual.
    pub session: Option<PathBuf>,
    /// A second place where the worktree appears inside the sandbox. The
    /// host backend, which has no mounts of its own, ignores it.
    pub alias: Option<WorktreeAlias>,
}

/// The worktree's second, stable place inside the sandbox: the same for
/// every task of a repository (`/workspace/<name>`), so that what a setup
/// step made at one worktree (a virtual environment's scripts, an editable
/// install, cargo's fingerprints) holds at another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeAlias {
    /// Where.
    pub path: PathBuf,
    /// The command starts there instead of at `cwd` (a check, whose
    /// build outputs then match the warm cache's).
    pub start_here: bool,
    /// Directories under the worktree put at the end of `PATH`, at the
    /// stable path (a virtual environment's `bin`): they add programs
    /// (`pytest`) but never shadow the system's.
    pub path_dirs: Vec<String>,
    /// Variables that point tools at directories under the stable path
    /// (`CARGO_HOME` at a setup's own cargo home); set after the
    /// toolchains' and before the command's own.
    pub env: Vec<(String, String)>,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl OutputStream {
    /// The stream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Bytes read from one stream, as they came (not necessarily UTF-8, not
/// necessarily whole lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Where it came from.
    pub stream: OutputStream,
    /// What was read.
    pub bytes: Vec<u8>,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when killed.
    pub signal: Option<i32>,
    /// It hit its time limit and was killed.
    pub timed_out: bool,
    /// It was cancelled and killed.
    pub cancelled: bool,
    /// How long it ran.
    pub duration: Duration,
}

impl CommandOutcome {
    /// True when it exited with code 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// A one-line account of how it ended, for people.
    pub fn describe(&self) -> String {
        if self.timed_out {
            format!(
                "killed after its time limit of {}s",
                self.duration.as_secs()
            )
        } else if self.cancelled {
            "cancelled".to_owned()
        } else {
            match (self.exit_code, self.signal) {
                (Some(0), _) => "exited with code 0".to_owned(),
                (Some(127), _) => "command not found (exit code 127)".to_owned(),
                (Some(126), _) => "command found but not executable (exit code 126)".to_owned(),
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "ended without an exit code".to_owned(),
            }
        }
    }
}

/// A command that could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The working directory is missing.
    #[error("the working directory {0} does not exist")]
    MissingCwd(PathBuf),
    /// The process could not be started.
    #[error("cannot start the command: {0}")]
    Spawn(#[source] std::io::Error),
    /// Resource limits could not be applied; the command did not run.
    #[error("cannot apply resource limits: {0}")]
    Limits(String),
    /// Network was granted but cannot be provided; the command did not run.
    #[error("cannot give the command network access: {0}")]
    Network(String),
    /// Waiting for the process failed.
    #[error("lost track of the command: {0}")]
    Wait(#[source] std::io::Error),
    /// The worker host running it could not (it was lost, or its sandbox
    /// refused the command).
    #[error("on the worker host: {0}")]
    Worker(String),
}
