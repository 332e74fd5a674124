//! What a worker sends about a run it holds: the base it asks for, each
//! command's output and end, the tunnel of a command granted network, and
//! the run's diff (or why there is none). Each is checked against the run's
//! holder and lease first.

use super::{Board, Dispatch, DispatchError, Ended, HeldRun, MAX_DIFF, Relay, TunnelPermit};
use pushpals_core::TaskId;
use pushpals_core::worker_wire::{ArtifactsReport, StepReport, WarmReport};
use pushpals_sandbox::{CommandOutcome, OutputChunk, OutputStream, RunError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Dispatch {
    /// Checks that `name` holds `task` under `lease`, noting that it spoke.
    fn held<'b>(
        board: &'b mut Board,
        name: &str,
        task: &str,
        lease: u64,
    ) -> Result<&'b mut HeldRun, DispatchError> {
        if let Some(worker) = board.workers.get_mut(name) {
            worker.last_word = Instant::now();
        }
        let Ok(id) = TaskId::parse(task) else {
            return Err(DispatchError::NotYours(format!(
                "{task:?} is not a task id"
            )));
        };
        match board.runs.get_mut(&id) {
            Some(run) if run.worker == name && run.lease == lease => Ok(run),
            Some(run) if run.worker == name => Err(DispatchError::Stale {
                task: task.to_owned(),
                lease,
            }),
            _ if lease != 0 => Err(DispatchError::Stale {
                task: task.to_owned(),
                lease,
            }),
            _ => Err(DispatchError::NotYours(format!(
                "task {task} is not one this worker runs"
            ))),
        }
    }

    /// The server's worktree of a task the worker holds (to bundle its
    /// base from).
    pub fn base_worktree(
        &self,
        name: &str,
        task: &str,
        lease: u64,
    ) -> Result<PathBuf, DispatchError> {
        let mut board = self.board();
        Ok(Self::held(&mut board, name, task, lease)?.worktree.clone())
    }

    /// What a connection relayed for command `seq` of the run reaches
    /// (the server's network proxy when it was granted network, the model
    /// gateway for an agent), while it runs, and a permit to hold while
    /// the connection is open: at most [`super::MAX_TUNNELS_PER_COMMAND`]
    /// for one command and [`super::MAX_TUNNELS`] in all.
    pub fn relay_target(
        &self,
        name: &str,
        task: &str,
        lease: u64,
        seq: u64,
        relay: Relay,
    ) -> Result<(PathBuf, TunnelPermit), DispatchError> {
        let mut board = self.board();
        let run = Self::held(&mut board, name, task, lease)?;
        let (proxy, open) = run.relays.get(&(seq, relay)).cloned().ok_or_else(|| {
            DispatchError::BadInput(match relay {
                Relay::Network => {
                    format!("command {seq} of this run is not running with network granted")
                }
                Relay::Gateway => {
                    format!("command {seq} of this run is not an agent running with the gateway")
                }
            })
        })?;
        let command = open.try_acquire_owned().map_err(|_| {
            DispatchError::Busy(format!(
                "command {seq} has {} connections open through the server, the most one \
                 command may: close one first",
                super::MAX_TUNNELS_PER_COMMAND
            ))
        })?;
        let all = Arc::clone(&self.tunnels).try_acquire_owned().map_err(|_| {
            DispatchError::Busy(format!(
                "{} connections of commands on workers are open through the server, the most at \
                 once: try again later",
                super::MAX_TUNNELS
            ))
        })?;
        Ok((
            proxy,
            TunnelPermit {
                _all: all,
                _command: command,
            },
        ))
    }

    /// One chunk of a command's output; chunks come in order from 0, a
    /// chunk sent again is taken once.
    #[allow(clippy::too_many_arguments)]
    pub async fn output(
        &self,
        name: &str,
        task: &str,
        lease: u64,
        seq: u64,
        chunk: u64,
        stream: &str,
        bytes: Vec<u8>,
    ) -> Result<(), DispatchError> {
        let stream = match stream {
            "stdout" => OutputStream::Stdout,
            "stderr" => OutputStream::Stderr,
            other => {
                return Err(DispatchError::BadInput(format!(
                    "stream must be stdout or stderr, not {other:?}"
                )));
            }
        };
        let sender = {
            let mut board = self.board();
            let run = Self::held(&mut board, name, task, lease)?;
            if run.ended.contains(&seq) {
                return Ok(());
            }
            let link = run
                .steps
                .get_mut(&seq)
                .ok_or_else(|| DispatchError::BadInput(format!("no command {seq} is running")))?;
            if chunk < link.next_chunk {
                return Ok(());
            }
            if chunk > link.next_chunk {
                return Err(DispatchError::OutOfOrder {
                    seq,
                    expected: link.next_chunk,
                });
            }
            link.next_chunk += 1;
            link.output.clone()
        };
        // The recorder may be gone (the run was cancelled); the output has
        // nowhere to go then.
        let _ = sender.send(OutputChunk { stream, bytes }).await;
        Ok(())
    }

    /// How a command ended; every chunk it counts must have come first. A
    /// report sent again is taken once.
    pub fn report(&self, name: &str, task: &str, report: &StepReport) -> Result<(), DispatchError> {
        let mut board = self.board();
        let run = Self::held(&mut board, name, task, report.lease)?;
        if run.ended.contains(&report.seq) {
            return Ok(());
        }
        let Some(link) = run.steps.get_mut(&report.seq) else {
            return Err(DispatchError::BadInput(format!(
                "no command {} is running",
                report.seq
            )));
        };
        if link.next_chunk < report.chunks {
            return Err(DispatchError::OutOfOrder {
                seq: report.seq,
                expected: link.next_chunk,
            });
        }
        let changes = match &report.tree {
            Some(tree) => match link.changes.take() {
                Some(diff) => Some((tree.clone(), diff)),
                None => return Err(DispatchError::ChangesFirst { seq: report.seq }),
            },
            None => None,
        };
        let Some(done) = link.done.take() else {
            return Ok(());
        };
        let ended = match &report.error {
            Some(error) => Err(RunError::Worker(format!("{name}: {error}"))),
            None => Ok(Ended {
                outcome: CommandOutcome {
                    exit_code: report.exit_code,
                    signal: report.signal,
                    timed_out: report.timed_out,
                    cancelled: report.cancelled,
                    duration: Duration::from_millis(report.duration_ms),
                },
                changes,
                trajectory: report.trajectory.clone(),
            }),
        };
        let _ = done.send(ended);
        Ok(())
    }

    /// What command `seq` of the run changed, as the worker sent it before
    /// its end (taken once).
    pub fn diff(
        &self,
        name: &str,
        task: &str,
        lease: u64,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), DispatchError> {
        if bytes.len() > MAX_DIFF {
            return Err(DispatchError::BadInput(format!(
                "the diff is over {} MiB",
                MAX_DIFF / (1024 * 1024)
            )));
        }
        let mut board = self.board();
        let run = Self::held(&mut board, name, task, lease)?;
        if run.ended.contains(&seq) {
            return Ok(());
        }
        let link = run
            .steps
            .get_mut(&seq)
            .ok_or_else(|| DispatchError::BadInput(format!("no command {seq} is running")))?;
        if link.changes.is_none() {
            link.changes = Some(bytes);
        }
        Ok(())
    }

    /// What the worker did about a warm cache (after `warm` or `seal`).
    pub fn warm_report(
        &self,
        name: &str,
        task: &str,
        report: WarmReport,
    ) -> Result<(), DispatchError> {
        let lease = report.lease;
        self.answer(name, task, lease, report, |run| run.warm.take())
    }

    /// Which artifacts the worker took (their bytes were sent first).
    pub fn artifacts_report(
        &self,
        name: &str,
        task: &str,
        report: ArtifactsReport,
    ) -> Result<(), DispatchError> {
        let lease = report.lease;
        self.answer(name, task, lease, report, |run| run.artifacts.take())
    }

    /// Hands `answer` to the driver waiting for it (through the sender
    /// `waiting` takes from the run); one nobody waits for is dropped.
    fn answer<T>(
        &self,
        name: &str,
        task: &str,
        lease: u64,
        answer: T,
        waiting: impl FnOnce(&mut HeldRun) -> Option<tokio::sync::oneshot::Sender<T>>,
    ) -> Result<(), DispatchError> {
        let mut board = self.board();
        let run = Self::held(&mut board, name, task, lease)?;
        if let Some(waiting) = waiting(run) {
            let _ = waiting.send(answer);
        }
        Ok(())
    }
}
