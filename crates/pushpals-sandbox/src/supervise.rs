//! Supervising a started command: streaming its output, its time limit,
//! cancellation, and killing its whole process group.

use crate::spec::{CommandOutcome, OutputChunk, OutputStream, RunError};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long a stopped command gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long to keep reading output after the command ended, for children
/// that left the process group but kept the pipes open.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Runs a prepared command in its own process group: streams stdout and
/// stderr to `output`, stops it at `timeout` or when `cancel` turns true,
/// and kills the whole group when it ends or this future is dropped.
pub(crate) async fn supervise(
    command: Command,
    timeout: Duration,
    output: mpsc::Sender<OutputChunk>,
    cancel: watch::Receiver<bool>,
) -> Result<CommandOutcome, RunError> {
    supervise_with(command, timeout, output, cancel, &|| {}).await
}

/// [`supervise`], calling `on_stop` first when the command is stopped
/// (time limit or cancel): a backend whose work lives outside the process
/// group (a container) stops it there.
pub(crate) async fn supervise_with(
    mut command: Command,
    timeout: Duration,
    output: mpsc::Sender<OutputChunk>,
    cancel: watch::Receiver<bool>,
    on_stop: &(dyn Fn() + Sync),
) -> Result<CommandOutcome, RunError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
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
    let mut process = Process::Child(child);
    settle(
        &mut process,
        group,
        started,
        timeout,
        cancel,
        readers,
        on_stop,
    )
    .await
}

/// A started command, however it was started.
pub(crate) enum Process {
    /// A child of this process (the sandbox's own, or the command itself).
    Child(tokio::process::Child),
    /// A command a task's resident sandbox started: its handshake socket
    /// (where its end is reported) and its pid, which is its group's id.
    Resident {
        /// The command's socket.
        handshake: AsyncFd<OwnedFd>,
        /// Its pid outside the sandbox.
        pid: Pid,
    },
}

impl Process {
    async fn wait(&mut self) -> Result<ExitStatus, RunError> {
        match self {
            Self::Child(child) => child.wait().await.map_err(RunError::Wait),
            Self::Resident { handshake, .. } => crate::resident::exit_status(handshake).await,
        }
    }

    fn start_kill(&mut self) {
        match self {
            Self::Child(child) => {
                let _ = child.start_kill();
            }
            Self::Resident { pid, .. } => {
                let _ = killpg(*pid, Signal::SIGKILL);
            }
        }
    }
}

/// Waits for a started command to end, its time limit or cancellation
/// (then `on_stop`, and its group is stopped); kills what it left in its
/// group, drains its output and says how it ended. Its group is killed
/// too if this future is dropped (the orchestrator shuts down).
pub(crate) async fn settle(
    process: &mut Process,
    group: Option<Pid>,
    started: Instant,
    timeout: Duration,
    mut cancel: watch::Receiver<bool>,
    readers: [Option<JoinHandle<()>>; 2],
    on_stop: &(dyn Fn() + Sync),
) -> Result<CommandOutcome, RunError> {
    let mut group_guard = GroupGuard(group);
    let deadline = tokio::time::sleep(timeout.saturating_sub(started.elapsed()));
    tokio::pin!(deadline);
    let mut timed_out = false;
    let mut cancelled = *cancel.borrow();
    // Once the cancel sender is gone, nobody can cancel any more.
    let mut cancel_open = true;
    let status = if cancelled {
        on_stop();
        stop(process, group).await?
    } else {
        loop {
            tokio::select! {
                status = process.wait() => break status?,
                () = &mut deadline => {
                    timed_out = true;
                    on_stop();
                    break stop(process, group).await?;
                }
                changed = cancel.changed(), if cancel_open => {
                    if changed.is_err() {
                        cancel_open = false;
                    } else if *cancel.borrow() {
                        cancelled = true;
                        on_stop();
                        break stop(process, group).await?;
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
async fn stop(process: &mut Process, group: Option<Pid>) -> Result<ExitStatus, RunError> {
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGTERM);
    }
    match tokio::time::timeout(KILL_GRACE, process.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGKILL);
            }
            process.start_kill();
            process.wait().await
        }
    }
}

/// Sends what `pipe` gives to `output`, a read at a time, until it ends.
pub(crate) async fn forward(
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
