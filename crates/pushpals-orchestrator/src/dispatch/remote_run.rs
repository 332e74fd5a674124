//! A run held by a worker host, seen by the task's driver as a runner: a
//! command goes to the worker's mailbox, its output and end come back
//! through the worker's requests.

use super::{Dispatch, Ended, StepLink};
use pushpals_core::TaskId;
use pushpals_core::worker_wire::{Instruction, Mirror};
use pushpals_sandbox::{BoxFuture, CommandOutcome, CommandSpec, OutputChunk, RunError, Runner};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a cancelled command may take to say it stopped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// One run on a worker host; ending it (drop) frees the worker.
pub(crate) struct RemoteRun {
    dispatch: Arc<Dispatch>,
    task: TaskId,
    worker: String,
    lease: u64,
    needs: Vec<String>,
    lost: watch::Receiver<Option<String>>,
}

impl RemoteRun {
    pub(super) fn new(
        dispatch: Arc<Dispatch>,
        task: TaskId,
        worker: String,
        lease: u64,
        needs: Vec<String>,
        lost: watch::Receiver<Option<String>>,
    ) -> Self {
        Self {
            dispatch,
            task,
            worker,
            lease,
            needs,
            lost,
        }
    }

    /// The worker's name.
    pub(crate) fn worker(&self) -> &str {
        &self.worker
    }

    /// The run's lease.
    pub(crate) fn lease(&self) -> u64 {
        self.lease
    }

    /// The labels the task needs.
    pub(crate) fn needs(&self) -> &[String] {
        &self.needs
    }

    /// Why the worker counts as lost, once it does.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Asks the worker for the run's diff against its base and waits for
    /// it (or for the worker to be lost, or `cancel`).
    pub(crate) async fn fetch_diff(
        &self,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Vec<u8>, String> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut board = self.dispatch.board();
            let Some(run) = board
                .runs
                .get_mut(&self.task)
                .filter(|r| r.lease == self.lease)
            else {
                return Err(self.lost().unwrap_or_else(|| "the run ended".into()));
            };
            run.diff = Some(sender);
            let ask = Instruction::SendDiff {
                task: self.task.to_string(),
                lease: self.lease,
            };
            self.dispatch.send(&mut board, &self.task, self.lease, ask);
        }
        let mut lost = self.lost.clone();
        tokio::select! {
            diff = receiver => match diff {
                Ok(Ok(diff)) => Ok(diff),
                Ok(Err(why)) => Err(format!("could not send the run's changes: {why}")),
                Err(_) => Err("the worker's run ended before its diff came".into()),
            },
            _ = lost.wait_for(Option::is_some) => Err(self.lost().unwrap_or_default()),
            _ = cancel.wait_for(|stop| *stop) => Err("cancelled".into()),
        }
    }
}

impl Drop for RemoteRun {
    fn drop(&mut self) {
        self.dispatch.release(&self.task, self.lease);
    }
}

impl Runner for RemoteRun {
    fn backend(&self) -> &'static str {
        "worker"
    }

    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>> {
        Box::pin(async move {
            self.run_on_worker(spec, output, cancel, None)
                .await
                .map(|ended| ended.outcome)
        })
    }
}

impl RemoteRun {
    /// Runs one command on the worker; `mirror` (a mirrored run's) says
    /// which tree the clone holds when it starts.
    pub(crate) async fn run_on_worker(
        &self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        mut cancel: watch::Receiver<bool>,
        mirror: Option<Mirror>,
    ) -> Result<Ended, RunError> {
        {
            let (done, ended) = oneshot::channel();
            let seq = {
                let mut board = self.dispatch.board();
                let Some(run) = board
                    .runs
                    .get_mut(&self.task)
                    .filter(|r| r.lease == self.lease)
                else {
                    return Err(RunError::Worker(
                        self.lost()
                            .unwrap_or_else(|| format!("worker {} left", self.worker)),
                    ));
                };
                let seq = run.next_seq;
                run.next_seq += 1;
                run.steps.insert(
                    seq,
                    StepLink {
                        output,
                        next_chunk: 0,
                        changes: None,
                        done: Some(done),
                    },
                );
                // Granted network, its connections come back through the
                // worker's connection to this proxy (kept up by the caller
                // until the command ends).
                let network = match &spec.network_proxy {
                    Some(proxy) => {
                        run.proxies.insert(seq, proxy.clone());
                        true
                    }
                    None => false,
                };
                let instruction = Instruction::Run {
                    task: self.task.to_string(),
                    lease: self.lease,
                    seq,
                    command_line: spec.command_line.clone(),
                    timeout_secs: spec.timeout.as_secs().max(1),
                    network,
                    mirror,
                };
                self.dispatch
                    .send(&mut board, &self.task, self.lease, instruction);
                seq
            };
            let mut lost = self.lost.clone();
            let ended = tokio::select! {
                ended = ended => ended,
                _ = lost.wait_for(Option::is_some) => {
                    return Err(RunError::Worker(self.lost().unwrap_or_default()));
                }
                _ = cancel.wait_for(|stop| *stop) => {
                    let stop = Instruction::Cancel {
                        task: self.task.to_string(),
                        lease: self.lease,
                        seq,
                    };
                    let mut board = self.dispatch.board();
                    self.dispatch.send(&mut board, &self.task, self.lease, stop);
                    if let Some(run) = board.runs.get_mut(&self.task) {
                        run.end_step(seq);
                    }
                    drop(board);
                    return Ok(Ended {
                        outcome: CommandOutcome {
                            exit_code: None,
                            signal: None,
                            timed_out: false,
                            cancelled: true,
                            duration: CANCEL_GRACE,
                        },
                        changes: None,
                    });
                }
            };
            // The step's link goes once it ended (its output sender with it,
            // so the recorder finishes).
            if let Some(run) = self.dispatch.board().runs.get_mut(&self.task) {
                run.end_step(seq);
            }
            ended.unwrap_or_else(|_| Err(RunError::Worker("the worker's run ended".into())))
        }
    }
}
