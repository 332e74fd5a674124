//! The host backend: a process group on this machine, scrubbed environment,
//! wall-time limit. No filesystem or network isolation.

use crate::spec::{CommandOutcome, CommandSpec, OutputChunk, RunError};
use crate::supervise::supervise;
use crate::{BoxFuture, Runner};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Environment variables passed through from the orchestrator; everything
/// else (API keys, tokens, credentials) is dropped.
const PASSED_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"];

/// Runs commands as process groups on the host.
#[derive(Debug, Clone, Default)]
pub struct HostRunner;

impl Runner for HostRunner {
    fn backend(&self) -> &'static str {
        "host (no isolation)"
    }

    fn isolated(&self) -> bool {
        false
    }

    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>> {
        Box::pin(run(spec, output, cancel))
    }
}

async fn run(
    spec: CommandSpec,
    output: mpsc::Sender<OutputChunk>,
    cancel: watch::Receiver<bool>,
) -> Result<CommandOutcome, RunError> {
    if spec.gateway.is_some() || spec.home.is_some() || spec.session.is_some() {
        // External agents run in their auto-approve modes: never unconfined.
        return Err(RunError::Network(
            "external agents run only inside the sandbox, and sandbox = \"none\" has none; use the bubblewrap backend".into(),
        ));
    }
    if !spec.cwd.is_dir() {
        return Err(RunError::MissingCwd(spec.cwd));
    }
    // Run with the shell whose grammar policy judged the line in.
    let bash = crate::bwrap::find_program("bash").ok_or_else(|| {
        RunError::Spawn(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "bash is not installed; policy reads command lines as bash, so they run with bash",
        ))
    })?;
    let mut command = Command::new(bash);
    command
        .arg("-c")
        .arg(&spec.command_line)
        .current_dir(&spec.cwd)
        .env_clear()
        .env("TERM", "dumb");
    for name in PASSED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    for (name, value) in &spec.env {
        command.env(name, value);
    }
    supervise(command, spec.timeout, output, cancel).await
}
