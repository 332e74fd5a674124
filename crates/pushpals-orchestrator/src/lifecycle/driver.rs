//! Driving one task from queued to awaiting its approval.
//!
//! Over 400 lines: one task's drive from queued to its approval, step by step; output, checks and
//! agents are their own modules.

use super::Lifecycle;
use crate::checks::repo_config_at;
use crate::command_gate::Refusal;
use crate::output::{Recorded, run_recorded};
use pushpals_core::payload::StateChanged;
use pushpals_core::payload::{CheckResult, Failure, WorktreeCreated};
use pushpals_core::{Actor, EventKind, NewEvent, Task, TaskId, TaskState};
use pushpals_policy::Policy;
use pushpals_sandbox::CommandSpec;
use pushpals_store::{StoreError, TaskUpdate};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// Why a driver stopped before the end.
pub(crate) enum Stop {
    /// The task failed; the reason goes into its record.
    Failed(String),
    /// Someone else moved the task (cancelled it); nothing more to do.
    Superseded,
    /// The worker host running it was lost; the reason says how. The run
    /// ends interrupted and the task is offered again.
    Lost(String),
}

impl From<crate::error::OrchestratorError> for Stop {
    fn from(error: crate::error::OrchestratorError) -> Self {
        match error {
            crate::error::OrchestratorError::Store(store) => store.into(),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidTransition(_) => Self::Superseded,
            other => Self::Failed(format!("the store failed: {other}")),
        }
    }
}

pub(crate) type StepResult<T> = Result<T, Stop>;

/// One command of a task: the worker's, the agent's, or a check.
pub(crate) struct Step {
    /// `worker`, `agent:<n>` or `check:<name>`.
    pub name: String,
    /// What to run.
    pub command_line: String,
    /// Its wall-time limit.
    pub timeout: Duration,
    /// The state to return to after waiting for an approval.
    pub resume: TaskState,
}

/// How a gated command ended.
pub(crate) enum Gated {
    /// It ran (whatever its exit code).
    Ran(Recorded),
    /// Policy or the person refused it; the reason says which.
    Refused(String),
}

impl Lifecycle {
    /// Starts the task's driver as its own tokio task.
    pub(crate) fn spawn_driver(self: &Arc<Self>, task_id: TaskId) {
        let cancel = self.cancels.arm(&task_id);
        let orchestrator = Arc::clone(self);
        let span = tracing::info_span!("task", task_id = %task_id, trace_id = %task_id.trace_id());
        crate::trace_link::join_task_trace(&span, &task_id);
        tokio::spawn(
            async move {
                let again = orchestrator.drive(&task_id, cancel).await;
                // The run is over: its resident sandbox, or its worker,
                // goes with it.
                orchestrator.end_remote(&task_id);
                let worktree = orchestrator.worktree_path(&task_id);
                orchestrator.runner.release(&worktree).await;
                orchestrator.cancels.disarm(&task_id);
                if again {
                    orchestrator.spawn_driver(task_id);
                }
            }
            .instrument(span),
        );
    }

    /// Drives one run; true when the task was queued again (its worker
    /// was lost) and needs a new driver.
    async fn drive(self: &Arc<Self>, task_id: &TaskId, mut cancel: watch::Receiver<bool>) -> bool {
        // A task waits for the tasks it depends on without holding a slot.
        let result = match self.dependencies_base(task_id, &mut cancel).await {
            Ok(base) => {
                let Ok(task) = self.store.task(task_id).await else {
                    return false;
                };
                let limit = self
                    .settings()
                    .repos
                    .get(&task.repo)
                    .and_then(|r| r.max_parallel);
                let _slot = self.slots.acquire(&task.repo, limit).await;
                self.drive_steps(task_id, base, cancel).await
            }
            Err(stop) => Err(stop),
        };
        match result {
            Ok(()) | Err(Stop::Superseded) => false,
            Err(Stop::Failed(reason)) => {
                tracing::info!(%task_id, %reason, "task failed");
                self.record_failure(task_id, reason).await;
                false
            }
            Err(Stop::Lost(reason)) => {
                tracing::warn!(%task_id, %reason, "the task's worker was lost; offering it again");
                self.offer_again(task_id, reason).await
            }
        }
    }

    /// The task's latest event that `wanted` picks.
    pub(crate) async fn latest_event(
        &self,
        task_id: &TaskId,
        wanted: impl Fn(&pushpals_core::Event) -> bool,
    ) -> StepResult<Option<pushpals_core::Event>> {
        let events = self
            .task_events(task_id)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        Ok(events.into_iter().rev().find(|e| wanted(e)))
    }

    /// Whether the task's worktree already got the warm cache (a
    /// continued task keeps what it had).
    async fn got_warm_cache(&self, task_id: &TaskId) -> StepResult<bool> {
        let used = self
            .latest_event(task_id, |e| e.kind == EventKind::CacheUsed.as_str())
            .await?;
        Ok(used.is_some())
    }

    /// Whether this run was queued by a continue that needs only the
    /// checks (see `continue_task`).
    async fn continued_for_checks_only(&self, task_id: &TaskId) -> StepResult<bool> {
        let queued = self
            .latest_event(task_id, |e| {
                e.read::<StateChanged>()
                    .is_some_and(|changed| changed.to == TaskState::Queued)
            })
            .await?;
        Ok(queued
            .and_then(|e| e.read::<StateChanged>())
            .is_some_and(|changed| changed.detail["checks_only"] == true))
    }

    /// Records the task's failure, retrying while the store cannot write
    /// (a full disk), so a task whose command stopped never stays
    /// `running`; stops when the task was settled otherwise (cancelled) or
    /// the server is closing (the next start settles it).
    async fn record_failure(&self, task_id: &TaskId, reason: String) {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.fail(task_id, reason.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    if self
                        .store
                        .task(task_id)
                        .await
                        .is_ok_and(|t| !t.state.is_active())
                    {
                        return;
                    }
                    tracing::error!(%task_id, %error, retry_in_ms = wait.as_millis() as u64,
                        "cannot record the task's failure; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn drive_steps(
        self: &Arc<Self>,
        task_id: &TaskId,
        base: Option<String>,
        cancel: watch::Receiver<bool>,
    ) -> StepResult<()> {
        let task = self.store.task(task_id).await?;
        if task.state != TaskState::Queued {
            return Err(Stop::Superseded);
        }
        self.move_to(
            task_id,
            TaskState::Preparing,
            TaskUpdate::default(),
            json!(null),
        )
        .await?;
        let task = self.prepare(task_id, base, &cancel).await?;
        let base = task.base_commit.clone().unwrap_or_default();
        let served = self.served(&task.repo)?;
        let config = repo_config_at(&served.repo, &base)
            .await
            .map_err(Stop::Failed)?;
        let repo_rules = config.policy_rules().map_err(Stop::Failed)?;
        let policy = self
            .gate
            .policy()
            .map_err(|e| Stop::Failed(e.to_string()))?
            .with_repo_rules(repo_rules)
            .map_err(|e| Stop::Failed(e.to_string()))?;
        self.move_to(
            task_id,
            TaskState::Running,
            TaskUpdate::default(),
            json!(null),
        )
        .await?;
        // A run may go to a worker host, which keeps warm caches of its
        // own (an external agent's to one that has the agent).
        let remote = self.place_run(&task, &config, &cancel).await?;
        // Each run on a worker is a new clone, which gets the cache again.
        if remote {
            self.warm_start_on_worker(&policy, &task, &config, &cancel)
                .await?;
        } else if !self.got_warm_cache(task_id).await? {
            self.warm_start(&policy, &task, &config, &cancel).await?;
        }
        let worktree = task.worktree_path.clone().unwrap_or_default();
        if let Some(work) = task.agent.clone() {
            match work.external.as_deref() {
                Some(name) => {
                    self.run_external(&policy, &task, &work, name, &worktree, &cancel)
                        .await?
                }
                None => {
                    self.run_agent(&policy, &task, &work, &config, &worktree, &cancel)
                        .await?
                }
            }
        } else if self.continued_for_checks_only(task_id).await? {
            // The command ran in the run a stop cut short; its checks did not.
        } else {
            let command = task
                .command
                .clone()
                .ok_or_else(|| Stop::Failed("the task has no command to run".into()))?;
            let worker = Step {
                name: "worker".into(),
                command_line: command,
                timeout: self.settings().command_timeout(),
                resume: TaskState::Running,
            };
            self.run_step(&policy, task_id, &worker, &worktree, &cancel)
                .await?;
        }

        self.setup_after_lock_changes(&policy, &task, &config, &cancel)
            .await?;
        self.move_to(
            task_id,
            TaskState::Checking,
            TaskUpdate::default(),
            json!(null),
        )
        .await?;
        let mut results = Vec::new();
        let mut failed = None;
        for check in config.checks() {
            let step = Step {
                name: format!("check:{}", check.name),
                command_line: check.command_line.clone(),
                timeout: config.check_timeout(self.settings().check_timeout()),
                resume: TaskState::Checking,
            };
            let passed = self
                .run_step(&policy, task_id, &step, &worktree, &cancel)
                .await;
            let passed_flag = passed.is_ok();
            let event = NewEvent::typed(
                Some(task_id),
                Actor::Orchestrator,
                &CheckResult {
                    check: check.name.to_owned(),
                    command: check.command_line.clone(),
                    passed: passed_flag,
                },
            )
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
            self.store.write(move |tx| tx.append(event)).await?;
            results.push(json!({ "check": check.name, "passed": passed_flag }));
            if let Err(stop) = passed {
                failed = Some(stop);
                break;
            }
        }
        // What the checks left is kept whether they passed or not (a
        // failing test's report is what a person wants to see); a worker
        // sends its own.
        if !matches!(failed, Some(Stop::Superseded | Stop::Lost(_))) {
            self.keep_artifacts(task_id, &worktree, &config, &cancel)
                .await?;
        }
        if let Some(stop) = failed {
            return Err(stop);
        }
        self.finish(task_id, &task, results).await
    }

    /// Makes the worktree and branch, from `base` (a dependency's head)
    /// or the freshly fetched base (`fresh_base`); a continued task keeps
    /// its own.
    async fn prepare(
        &self,
        task_id: &TaskId,
        base: Option<String>,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<Task> {
        let task = self.store.task(task_id).await?;
        if task
            .worktree_path
            .as_deref()
            .is_some_and(|path| std::path::Path::new(path).is_dir())
        {
            return Ok(task);
        }
        let served = self.served(&task.repo)?;
        let base = match base {
            Some(base) => base,
            None => self.fresh_base(&served, task_id, cancel).await?,
        };
        let path = self.worktree_path(task_id);
        if task.worktree_path.is_none() {
            // A run cut short (the server killed mid `worktree add`) may
            // have left part of it behind.
            served
                .repo
                .clear_unrecorded_worktree(&path, &task_id.branch())
                .await
                .map_err(|e| Stop::Failed(format!("cannot clear an unfinished worktree: {e}")))?;
        }
        served
            .repo
            .add_worktree(&path, &task_id.branch(), &base)
            .await
            .map_err(|e| Stop::Failed(format!("cannot make the task's worktree: {e}")))?;
        let id = task_id.clone();
        let path_text = path.to_string_lossy().into_owned();
        let task = self
            .store
            .write(move |tx| {
                let created = WorktreeCreated {
                    base_commit: base.clone(),
                    branch: id.branch(),
                    path: path_text.clone(),
                };
                tx.append(NewEvent::typed(Some(&id), Actor::Orchestrator, &created)?)?;
                tx.update_task(
                    &id,
                    TaskUpdate {
                        base_commit: Some(base),
                        worktree_path: Some(Some(path_text)),
                        ..TaskUpdate::default()
                    },
                )
            })
            .await?;
        Ok(task)
    }

    /// Runs one command of the task after policy lets it; a refusal or a
    /// failure is the task's failure.
    async fn run_step(
        &self,
        policy: &Policy,
        task_id: &TaskId,
        step: &Step,
        worktree: &str,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let recorded = match self
            .run_gated(policy, task_id, step, worktree, cancel)
            .await?
        {
            Gated::Ran(recorded) => recorded,
            Gated::Refused(reason) => return Err(Stop::Failed(reason)),
        };
        let outcome = &recorded.outcome;
        if outcome.succeeded() {
            return Ok(());
        }
        let mut reason = format!(
            "{} `{}` {}",
            step.name,
            step.command_line,
            outcome.describe()
        );
        if !recorded.tail.is_empty() {
            reason.push_str("; last output:\n");
            reason.push_str(&recorded.tail);
        }
        Err(Stop::Failed(reason))
    }

    /// Runs one command of the task through the policy gate and the
    /// sandbox, and records it; a refusal is returned, not failed.
    pub(crate) async fn run_gated(
        &self,
        policy: &Policy,
        task_id: &TaskId,
        step: &Step,
        worktree: &str,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<Gated> {
        let command_line = step.command_line.as_str();
        let network = match self
            .gate
            .authorize(
                policy,
                task_id,
                &step.name,
                command_line,
                step.resume,
                cancel,
            )
            .await
        {
            Ok(network) => network,
            Err(Refusal::Refused(reason)) => return Ok(Gated::Refused(reason)),
            Err(Refusal::Cancelled) => return Err(Stop::Superseded),
            Err(Refusal::Store(error)) => return Err(error.into()),
        };
        // A command on a worker reaches out only through this machine's
        // proxy, whatever runs commands here.
        let on_worker = self.remote.get(task_id).is_some();
        let proxy = if network && (on_worker || self.runner.isolated()) {
            Some(self.start_proxy(task_id)?)
        } else {
            None
        };
        let served = self.served_for(task_id).await?;
        let spec = CommandSpec {
            command_line: command_line.to_owned(),
            cwd: worktree.into(),
            timeout: step.timeout,
            env: vec![("PUSHPALS_TASK".into(), task_id.to_string())],
            read_only_paths: served.repo.git_common_dir().into_iter().collect(),
            network_proxy: proxy.as_ref().map(|p| p.socket_path().to_path_buf()),
            gateway: None,
            home: None,
            session: None,
            // Checks start at the stable path, where the warm cache's
            // build outputs were made.
            alias: self.worktree_alias(
                served.repo.root(),
                Path::new(worktree),
                step.name.starts_with("check:"),
            ),
        };
        let recorded = self
            .run_spec(task_id, &step.name, spec, proxy, cancel)
            .await?;
        Ok(Gated::Ran(recorded))
    }

    /// Runs `spec` as step `step` of the task and records it; `proxy`
    /// (its network) lives until it ends. A cancel supersedes the run.
    pub(crate) async fn run_spec(
        &self,
        task_id: &TaskId,
        step: &str,
        spec: CommandSpec,
        proxy: Option<pushpals_sandbox::Proxy>,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<crate::output::Recorded> {
        let runner = self.runner_for(task_id);
        self.run_spec_on(runner, task_id, step, spec, proxy, cancel)
            .await
    }

    /// [`Self::run_spec`] with `runner`.
    pub(crate) async fn run_spec_on(
        &self,
        runner: Arc<dyn pushpals_sandbox::Runner>,
        task_id: &TaskId,
        step: &str,
        spec: CommandSpec,
        proxy: Option<pushpals_sandbox::Proxy>,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<crate::output::Recorded> {
        let scanner = self.scanner();
        let recorded = run_recorded(
            &self.store,
            runner.as_ref(),
            &scanner,
            task_id,
            step,
            spec,
            cancel.clone(),
            None,
        )
        .await?
        .map_err(|e| self.failed_or_lost(task_id, format!("{step}: {e}")))?;
        drop(proxy);
        if recorded.outcome.cancelled {
            return Err(Stop::Superseded);
        }
        Ok(recorded)
    }

    pub(crate) async fn move_to(
        &self,
        task_id: &TaskId,
        to: TaskState,
        update: TaskUpdate,
        detail: Value,
    ) -> Result<Task, StoreError> {
        let id = task_id.clone();
        self.store
            .write(move |tx| tx.transition(&id, to, update, Actor::Orchestrator, detail))
            .await
    }

    /// Marks the task failed with `reason`, unless it already ended.
    pub(crate) async fn fail(&self, task_id: &TaskId, reason: String) -> Result<(), StoreError> {
        let id = task_id.clone();
        let result = self
            .store
            .write(move |tx| {
                let failure = Failure {
                    message: reason.clone(),
                    plan_id: None,
                };
                tx.append(NewEvent::typed(Some(&id), Actor::Orchestrator, &failure)?)?;
                tx.transition(
                    &id,
                    TaskState::Failed,
                    TaskUpdate {
                        reason: Some(reason),
                        ..TaskUpdate::default()
                    },
                    Actor::Orchestrator,
                    json!(null),
                )
            })
            .await;
        match result {
            Ok(_) | Err(StoreError::InvalidTransition(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }
}
