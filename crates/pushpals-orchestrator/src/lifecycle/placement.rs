//! Where a task's run goes (this machine or a worker host), taking a
//! worker's artifacts back, and offering a run again when its worker is
//! lost.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use crate::checks::RepoConfig;
use crate::dispatch::{MirroredRun, Placement};
use pushpals_core::payload::{Failure, StateChanged, TaskPlaced, WorkerLost};
use pushpals_core::{Actor, NewEvent, Task, TaskId, TaskState};
use pushpals_store::{StoreError, TaskUpdate};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// How many times a task's runs may lose their worker before it stops
/// being offered again.
const MOST_LOSSES: usize = 3;

/// How many times the task's runs lost their worker since it was created
/// or a person continued it.
fn losses_since_started(events: &[pushpals_core::Event]) -> usize {
    let start = events
        .iter()
        .rposition(|e| {
            e.read::<StateChanged>()
                .is_some_and(|c| c.to == TaskState::Queued && c.detail["continued"] == true)
        })
        .unwrap_or(0);
    events[start..]
        .iter()
        .filter(|e| e.read::<WorkerLost>().is_some())
        .count()
}

impl Lifecycle {
    /// Places the task's run: on a worker host (recorded, and held until
    /// the driver ends) or here. Returns whether it went to a worker. The
    /// run is mirrored: each command there starts from the worktree's
    /// files here and what it changed comes back to them, so an agent
    /// works on the files here and its commands there (see
    /// [`crate::dispatch::MirroredRun`]).
    pub(super) async fn place_run(
        &self,
        task: &Task,
        config: &RepoConfig,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<bool> {
        let worktree = task.worktree_path.clone().unwrap_or_default();
        let mut needs = config.needs(Path::new(&worktree));
        match task.agent.as_ref().and_then(|a| a.external.as_deref()) {
            // A built-in adapter's agent runs on a worker that has it.
            Some(name) if self.agent_runs_on_workers(name) => {
                needs.push(crate::dispatch::agent_need(name));
            }
            // An agent of a command of this machine's config runs here.
            Some(_) => return Ok(false),
            None => {}
        }
        let since = Instant::now();
        let mut cancel = cancel.clone();
        let placement = self
            .dispatch
            .place(
                &task.id,
                &task.repo,
                task.base_commit.as_deref().unwrap_or_default(),
                &needs,
                worktree.into(),
                &mut cancel,
            )
            .await;
        let run = match placement {
            Ok(Placement::Local) => return Ok(false),
            Ok(Placement::Remote(run)) => run,
            Err(_) if *cancel.borrow() => return Err(Stop::Superseded),
            Err(reason) => return Err(Stop::Failed(reason)),
        };
        let placed = TaskPlaced {
            worker: Some(run.worker().to_owned()),
            lease: run.lease(),
            needs: run.needs().to_vec(),
            waited_ms: u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let event = NewEvent::typed(Some(&task.id), Actor::Orchestrator, &placed)
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
        let mirrored = MirroredRun::new(
            Arc::clone(&run),
            self.served(&task.repo)?,
            PathBuf::from(task.worktree_path.clone().unwrap_or_default()),
            task.base_commit.clone().unwrap_or_default(),
        );
        self.remote.hold(&task.id, run, mirrored);
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(true)
    }

    /// Keeps what the checks left (`[checks] artifacts`): taken from the
    /// worktree here, or sent by the run's worker from its clone. A worker
    /// that cannot send them costs only them (a lost worker or a cancel
    /// shows at the next step).
    pub(super) async fn keep_artifacts(
        &self,
        task_id: &TaskId,
        worktree: &str,
        config: &RepoConfig,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let dir = super::artifacts_dir(&self.worktrees_dir, task_id);
        let patterns = &config.checks.artifacts;
        let Some(run) = self.remote.get(task_id) else {
            return crate::artifacts::publish(
                &self.store,
                dir,
                task_id,
                Path::new(worktree),
                patterns,
            )
            .await;
        };
        if patterns.is_empty() {
            return Ok(());
        }
        let mut asking = cancel.clone();
        match run.fetch_artifacts(patterns, &mut asking).await {
            Ok(report) => {
                crate::worker_artifacts::publish_sent(
                    &self.store,
                    dir,
                    task_id,
                    run.worker(),
                    patterns,
                    report,
                )
                .await
            }
            Err(why) => {
                tracing::warn!(%task_id, %why, "no artifacts from the worker");
                Ok(())
            }
        }
    }

    /// The run's worker was lost: records it, ends the run `interrupted`
    /// (its output kept) and queues the task again, unless its runs lost
    /// their worker [`MOST_LOSSES`] times since the person last started
    /// it (then it ends failed, saying so). True when queued.
    pub(super) async fn offer_again(&self, task_id: &TaskId, reason: String) -> bool {
        let Some(run) = self.remote.get(task_id) else {
            return false;
        };
        // A command that ended there sent its changes back first: offered
        // again, only its checks run (running it twice would apply its
        // change twice).
        let (losses, checks_only) = match self.task_events(task_id).await {
            Ok(events) => (
                losses_since_started(&events),
                crate::summary::worker_finished_in_last_run(&events),
            ),
            Err(_) => (0, false),
        };
        let lost = WorkerLost {
            worker: run.worker().to_owned(),
            lease: run.lease(),
            reason: reason.clone(),
        };
        self.remote.end(task_id);
        drop(run);
        let id = task_id.clone();
        let given_up = losses + 1 >= MOST_LOSSES;
        let result = self
            .store
            .write(move |tx| {
                tx.append(NewEvent::typed(Some(&id), Actor::Orchestrator, &lost)?)?;
                if given_up {
                    let message = format!(
                        "{reason}; its runs lost their worker {MOST_LOSSES} times, so it is not \
                         offered again: see `pushpals workers`, then continue the task"
                    );
                    let failure = Failure {
                        message: message.clone(),
                        plan_id: None,
                    };
                    tx.append(NewEvent::typed(Some(&id), Actor::Orchestrator, &failure)?)?;
                    return tx.transition(
                        &id,
                        TaskState::Failed,
                        TaskUpdate {
                            reason: Some(message),
                            ..TaskUpdate::default()
                        },
                        Actor::Orchestrator,
                        json!({ "worker_lost": true }),
                    );
                }
                tx.transition(
                    &id,
                    TaskState::Interrupted,
                    TaskUpdate {
                        reason: Some(format!("{reason}; the task is offered again")),
                        ..TaskUpdate::default()
                    },
                    Actor::Orchestrator,
                    json!({ "worker_lost": true }),
                )?;
                tx.transition(
                    &id,
                    TaskState::Queued,
                    TaskUpdate {
                        clear_reason: true,
                        ..TaskUpdate::default()
                    },
                    Actor::Orchestrator,
                    json!({ "offered_again": true, "checks_only": checks_only }),
                )
            })
            .await;
        match result {
            Ok(_) => !given_up,
            Err(StoreError::InvalidTransition(_)) => false,
            Err(error) => {
                tracing::error!(%task_id, %error, "cannot record a lost worker; the task stays as it was");
                false
            }
        }
    }

    /// Whether the external agent `name` may run on a worker host: one of
    /// the adapters Push Pals ships, whose program a worker finds itself
    /// (not an `[agents.NAME] command` or `program` of this machine's).
    fn agent_runs_on_workers(&self, name: &str) -> bool {
        let configured = self
            .settings()
            .agents
            .get(name)
            .cloned()
            .unwrap_or_default();
        configured.command.is_none()
            && configured.program.is_none()
            && pushpals_agent::external::builtin()
                .iter()
                .any(|adapter| adapter.name() == name)
    }

    /// The runner for the task's commands: its worker's, or this machine's.
    pub(crate) fn runner_for(&self, task_id: &TaskId) -> Arc<dyn pushpals_sandbox::Runner> {
        self.remote
            .runner(task_id)
            .unwrap_or_else(|| Arc::clone(&self.runner))
    }

    /// Why the task's worker counts as lost, if its run is on one that is.
    pub(crate) fn lost_worker(&self, task_id: &TaskId) -> Option<String> {
        self.remote.get(task_id).and_then(|run| run.lost())
    }

    /// The stop for a step that failed with `reason`: lost (the run is
    /// offered again) when the task's worker was lost, else failed.
    pub(crate) fn failed_or_lost(&self, task_id: &TaskId, reason: String) -> Stop {
        match self.lost_worker(task_id) {
            Some(lost) => Stop::Lost(lost),
            None => Stop::Failed(reason),
        }
    }

    /// Forgets the task's run on a worker (the worker is freed).
    pub(super) fn end_remote(&self, task_id: &TaskId) {
        self.remote.end(task_id);
    }
}
