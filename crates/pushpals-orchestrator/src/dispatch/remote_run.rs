//! A run held by a worker host, seen by the task's driver as a runner: a
//! command goes to the worker's mailbox, its output and end come back
//! through the worker's requests.

use super::{Dispatch, Ended, Relay, StepLink};
use pushpals_core::TaskId;
use pushpals_core::worker_wire::{AgentLaunch, ArtifactsReport, Instruction, Mirror, WarmReport};
use pushpals_sandbox::{BoxFuture, CommandOutcome, CommandSpec, OutputChunk, RunError, Runner};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a cancelled command may take to say it stopped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// How a command runs on the worker besides its spec.
#[derive(Default)]
pub(crate) struct OnWorker {
    /// A mirrored run's starting tree.
    pub(crate) mirror: Option<Mirror>,
    /// In the warm cache being built, not the clone.
    pub(crate) in_build: bool,
    /// Make the setup's own cargo home in the build first, with this
    /// config.
    pub(crate) cargo_home: Option<String>,
    /// An external agent's command.
    pub(crate) agent: Option<AgentLaunch>,
}

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

    /// The program the worker found for the external agent `name`, as it
    /// last said.
    pub(crate) fn agent_program(&self, name: &str) -> Option<std::path::PathBuf> {
        let board = self.dispatch.board();
        let worker = board.workers.get(&self.worker)?;
        worker
            .agents
            .iter()
            .find(|a| a.name == name)
            .map(|a| std::path::PathBuf::from(&a.program))
    }

    /// Sends `ask` to the worker and waits for its answer, which comes
    /// through the sender `wait` puts in the run (or for the worker to be
    /// lost, or `cancel`).
    async fn ask<T>(
        &self,
        ask: Instruction,
        wait: impl FnOnce(&mut super::HeldRun, oneshot::Sender<T>),
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<T, String> {
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
            wait(run, sender);
            self.dispatch.send(&mut board, &self.task, self.lease, ask);
        }
        let mut lost = self.lost.clone();
        tokio::select! {
            answer = receiver => answer.map_err(|_| "the worker's run ended before it answered".into()),
            _ = lost.wait_for(Option::is_some) => Err(self.lost().unwrap_or_default()),
            _ = cancel.wait_for(|stop| *stop) => Err("cancelled".into()),
        }
    }
}

impl RemoteRun {
    /// Asks the worker to give the clone the warm cache `key` (or to make
    /// a tree to build it in) and waits for its answer.
    pub(crate) async fn warm(
        &self,
        key: &str,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<WarmReport, String> {
        let ask = Instruction::Warm {
            task: self.task.to_string(),
            lease: self.lease,
            key: key.to_owned(),
        };
        self.ask_about_cache(ask, cancel).await
    }

    /// Tells the worker its build is done: keep it as the cache `key` and
    /// give it to the clone; waits for its answer.
    pub(crate) async fn seal(
        &self,
        key: &str,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<WarmReport, String> {
        let ask = Instruction::Seal {
            task: self.task.to_string(),
            lease: self.lease,
            key: key.to_owned(),
        };
        self.ask_about_cache(ask, cancel).await
    }

    /// Asks the worker for the artifacts `patterns` name in its clone and
    /// waits for its report (their bytes come before it).
    pub(crate) async fn fetch_artifacts(
        &self,
        patterns: &[String],
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<ArtifactsReport, String> {
        let ask = Instruction::SendArtifacts {
            task: self.task.to_string(),
            lease: self.lease,
            patterns: patterns.to_vec(),
        };
        self.ask(ask, |run, answer| run.artifacts = Some(answer), cancel)
            .await
    }

    async fn ask_about_cache(
        &self,
        ask: Instruction,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<WarmReport, String> {
        let report = self
            .ask(ask, |run, answer| run.warm = Some(answer), cancel)
            .await?;
        match &report.error {
            Some(why) => Err(format!("worker {}: {why}", self.worker)),
            None => Ok(report),
        }
    }
}

/// The run's warm cache being built on the worker, as a runner: its
/// commands run in the build's tree, not the clone.
pub(crate) struct InBuild {
    pub(crate) run: Arc<RemoteRun>,
    /// Make the setup's own cargo home there first, with this config.
    pub(crate) cargo_home: Option<String>,
}

impl Runner for InBuild {
    fn backend(&self) -> &'static str {
        "worker"
    }

    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>> {
        let on = OnWorker {
            in_build: true,
            cargo_home: self.cargo_home.clone(),
            ..OnWorker::default()
        };
        Box::pin(async move {
            self.run
                .run_on_worker(spec, output, cancel, on)
                .await
                .map(|ended| ended.outcome)
        })
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
            self.run_on_worker(spec, output, cancel, OnWorker::default())
                .await
                .map(|ended| ended.outcome)
        })
    }
}

impl RemoteRun {
    /// Runs one command on the worker, as `on` says.
    pub(crate) async fn run_on_worker(
        &self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        mut cancel: watch::Receiver<bool>,
        on: OnWorker,
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
                // until the command ends); an agent's to the gateway.
                let relayed = [
                    (Relay::Network, &spec.network_proxy),
                    (Relay::Gateway, &spec.gateway),
                ];
                for (relay, socket) in relayed {
                    if let Some(socket) = socket {
                        let open =
                            Arc::new(tokio::sync::Semaphore::new(super::MAX_TUNNELS_PER_COMMAND));
                        run.relays.insert((seq, relay), (socket.clone(), open));
                    }
                }
                let network = spec.network_proxy.is_some();
                let instruction = Instruction::Run {
                    task: self.task.to_string(),
                    lease: self.lease,
                    seq,
                    command_line: spec.command_line.clone(),
                    timeout_secs: spec.timeout.as_secs().max(1),
                    network,
                    mirror: on.mirror,
                    in_build: on.in_build,
                    at_stable_path: spec.alias.as_ref().is_some_and(|a| a.start_here),
                    // The worker names the task itself; paths under the
                    // stable path are the worker's own.
                    env: spec
                        .env
                        .iter()
                        .filter(|(name, _)| name != "PUSHPALS_TASK" && name != "CARGO_HOME")
                        .cloned()
                        .collect(),
                    cargo_home: on.cargo_home,
                    agent: on.agent,
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
                        trajectory: None,
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
