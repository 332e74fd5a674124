//! The host backend: a process group on this machine, scrubbed environment,
//! wall-time limit. No filesystem or network isolation.

use crate::spec::{CommandOutcome, CommandSpec, OutputChunk, OutputStream, RunError};
use crate::{BoxFuture, Runner};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Environment variables passed through from the orchestrator; everything
/// else (API keys, tokens, credentials) is dropped.
const PASSED_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"];

/// How long a stopped command gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long to keep reading output after the command ended, for children
/// that left the process group but kept the pipes open.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Runs commands as process groups on the host.
#[derive(Debug, Clone, Default)]
pub struct HostRunner;

impl Runner for HostRunner {
    fn backend(&self) -> &'static str {
        "host (no isolation)"
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
    mut cancel: watch::Receiver<bool>,
) -> Result<CommandOutcome, RunError> {
    if !spec.cwd.is_dir() {
        return Err(RunError::MissingCwd(spec.cwd));
    }
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&spec.command_line)
        .current_dir(&spec.cwd)
        .env_clear()
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in PASSED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    for (name, value) in &spec.env {
        command.env(name, value);
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
    // If this future is dropped (the orchestrator shuts down), the whole
    // group goes, not only the shell.
    let mut group_guard = GroupGuard(group);
    let readers = [
        child
            .stdout
            .take()
            .map(|pipe| tokio::spawn(forward(pipe, OutputStream::Stdout, output.clone()))),
        child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(forward(pipe, OutputStream::Stderr, output.clone()))),
    ];
    drop(output);

    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    let mut cancelled = *cancel.borrow();
    // Once the cancel sender is gone, nobody can cancel any more.
    let mut cancel_open = true;
    let status = if cancelled {
        stop(&mut child, group).await?
    } else {
        loop {
            tokio::select! {
                status = child.wait() => break status.map_err(RunError::Wait)?,
                () = &mut deadline => {
                    timed_out = true;
                    break stop(&mut child, group).await?;
                }
                changed = cancel.changed(), if cancel_open => {
                    if changed.is_err() {
                        cancel_open = false;
                    } else if *cancel.borrow() {
                        cancelled = true;
                        break stop(&mut child, group).await?;
                    }
                }
            }
        }
    };
    let duration = started.elapsed();
    // Whatever the command left running in its group goes too; then the
    // guard stands down, so a later drop cannot hit a reused group id.
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGKILL);
    }
    group_guard.0 = None;
    for reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(DRAIN_LIMIT, reader).await;
    }
    Ok(CommandOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        cancelled,
        duration,
    })
}

/// Kills a process group when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// SIGTERM to the group, then SIGKILL after a grace period.
async fn stop(
    child: &mut tokio::process::Child,
    group: Option<Pid>,
) -> Result<std::process::ExitStatus, RunError> {
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGTERM);
    }
    match tokio::time::timeout(KILL_GRACE, child.wait()).await {
        Ok(status) => status.map_err(RunError::Wait),
        Err(_) => {
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = child.start_kill();
            child.wait().await.map_err(RunError::Wait)
        }
    }
}

async fn forward(
    mut pipe: impl AsyncRead + Unpin,
    stream: OutputStream,
    output: mpsc::Sender<OutputChunk>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = OutputChunk {
                    stream,
                    bytes: buffer[..n].to_vec(),
                };
                if output.send(chunk).await.is_err() {
                    break;
                }
            }
        }
    }
}
