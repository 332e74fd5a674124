//! The task lifecycle: one part that takes a task from queued to its
//! commit, and owns what tasks at work keep in memory.
//!
//! Its interface is narrow: [`Lifecycle::start_task`] (a new or continued
//! run), [`Lifecycle::continue_task`], [`Lifecycle::cancel`],
//! [`Lifecycle::decide_commit`] (a commit approval answered), and at start
//! [`Lifecycle::settle_cut_short`]. Inside, each run is a driver
//! (`driver`) that fetches the base (`fresh_base`), prepares the worktree,
//! warms caches and runs setup (`warm_start`, `setup_run`), runs the
//! worker through the command gate (a command, the built-in agent in
//! `agent_run`, or an external agent in `external_run`), runs the checks,
//! publishes artifacts and asks for the commit (`commit`).
//!
//! It owns: the `max_parallel` slots, the running drivers' cancel switches,
//! the inboxes of agent tasks, and external agents' state. It uses, by
//! handle: the store, the repositories, the runner, the settings and secret
//! rules in force, the command gate, and delivery (a commit offers a push).

mod agent_host;
mod agent_run;
mod agent_session;
mod brief;
mod commit;
mod continuation;
mod driver;
mod external_run;
mod fresh_base;
mod lock_changes;
mod network;
mod placement;
mod reconcile;
mod remote_warm;
mod schedule;
pub(crate) mod setup_run;
mod warm_start;

use crate::command_gate::CommandGate;
use crate::current::Current;
use crate::delivery::Delivery;
use crate::dispatch::Dispatch;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::external_agents::ExternalAgents;
use crate::fair_slots::FairSlots;
use crate::repositories::{Repositories, ServedRepo};
use crate::running_tasks::{CancelSwitches, Inboxes, RemoteRuns};
use crate::settings::Settings;
use pushpals_core::{Event, TaskId};
use pushpals_sandbox::Runner;
use pushpals_store::Store;
use pushpals_workspace::SecretScanner;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use driver::{StepResult, Stop};

/// Longest accepted command line, in bytes.
const MAX_COMMAND: usize = 64 * 1024;

/// What the lifecycle is built from: handles to the parts it uses.
pub(crate) struct LifecycleHandles {
    pub(crate) store: Store,
    pub(crate) repos: Arc<Repositories>,
    pub(crate) runner: Arc<dyn Runner>,
    pub(crate) settings: Arc<Current<Settings>>,
    pub(crate) secrets: Arc<Current<SecretScanner>>,
    pub(crate) gate: Arc<CommandGate>,
    pub(crate) delivery: Arc<Delivery>,
    pub(crate) dispatch: Arc<Dispatch>,
    /// The data directory: worktrees, artifacts, proxy and session
    /// sockets and agents' homes live beneath it.
    pub(crate) data_dir: PathBuf,
}

/// Takes tasks from queued to their commit; shared as `Arc<Lifecycle>`.
pub(crate) struct Lifecycle {
    store: Store,
    repos: Arc<Repositories>,
    runner: Arc<dyn Runner>,
    settings: Arc<Current<Settings>>,
    secrets: Arc<Current<SecretScanner>>,
    gate: Arc<CommandGate>,
    delivery: Arc<Delivery>,
    /// Where runs go: this machine or a worker host.
    dispatch: Arc<Dispatch>,
    /// Runs that worker hosts hold.
    remote: RemoteRuns,
    worktrees_dir: PathBuf,
    /// `max_parallel`, shared fairly by the repositories.
    slots: FairSlots,
    /// Cancel switches of tasks that have a driver running.
    cancels: CancelSwitches,
    /// Messages for agent tasks, taken at their next step.
    inboxes: Inboxes,
    /// External agents' gateway, versions, homes and sessions.
    agents: ExternalAgents,
}

impl Lifecycle {
    /// A lifecycle with no task running.
    pub(crate) fn new(handles: LifecycleHandles) -> Self {
        let max_parallel = handles.settings.get().max_parallel();
        let agents = ExternalAgents::new(
            handles.store.clone(),
            Arc::clone(&handles.runner),
            Arc::clone(&handles.secrets),
            handles.data_dir.clone(),
        );
        Self {
            store: handles.store,
            repos: handles.repos,
            runner: handles.runner,
            settings: handles.settings,
            secrets: handles.secrets,
            gate: handles.gate,
            delivery: handles.delivery,
            dispatch: handles.dispatch,
            remote: RemoteRuns::default(),
            worktrees_dir: handles.data_dir.join("worktrees"),
            slots: FairSlots::new(max_parallel),
            cancels: CancelSwitches::default(),
            inboxes: Inboxes::default(),
            agents,
        }
    }

    /// Starts a run of a queued task (its driver, as a tokio task).
    pub(crate) fn start_task(self: &Arc<Self>, task_id: TaskId) {
        self.spawn_driver(task_id);
    }

    /// Tells a task's running driver to stop (the task was cancelled).
    pub(crate) fn stop_driver(&self, task_id: &TaskId) {
        self.cancels.pull(task_id);
    }

    /// Where a task's worktree is made.
    pub(crate) fn worktree_path(&self, task_id: &TaskId) -> PathBuf {
        self.worktrees_dir.join(task_id.as_str())
    }

    /// The settings in force.
    fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    /// The secret rules in force.
    fn scanner(&self) -> SecretScanner {
        self.secrets.get().as_ref().clone()
    }

    /// A served repository by name (an error says why it is not served).
    fn served(&self, name: &str) -> OrchestratorResult<Arc<ServedRepo>> {
        self.repos.served(name)
    }

    /// The repository a task works in.
    async fn served_for(&self, task_id: &TaskId) -> OrchestratorResult<Arc<ServedRepo>> {
        let task = self.store.task(task_id).await?;
        self.served(&task.repo)
    }

    /// Every event of a task, oldest first.
    async fn task_events(&self, task_id: &TaskId) -> OrchestratorResult<Vec<Event>> {
        Ok(self.store.task_events(task_id).await?)
    }

    /// Checks a command line (and the title it goes with): present, not
    /// blank, not too long, and holding no secret.
    pub(crate) fn checked_command(
        &self,
        title: &str,
        command: Option<String>,
    ) -> OrchestratorResult<String> {
        let command = match command {
            Some(line) if !line.trim().is_empty() && line.len() <= MAX_COMMAND => line,
            Some(_) => {
                return Err(OrchestratorError::InvalidInput(format!(
                    "the command must be 1 to {MAX_COMMAND} bytes and not blank"
                )));
            }
            None => {
                return Err(OrchestratorError::InvalidInput(
                    "a task needs a command to run (--run \"...\" on the command line, \
                     \"command\" in the API) or a prompt for the agent (--agent \"...\", \
                     \"agent\": {\"prompt\": ...})"
                        .into(),
                ));
            }
        };
        // A secret typed into the command line would end up in the task,
        // its events and its commit message: refuse it before storing.
        self.refuse_secrets(&format!("{title}\n{command}"), "the title or command")?;
        Ok(command)
    }

    /// Refuses `text` when it holds what looks like a secret; `what` names
    /// it in the error.
    pub(crate) fn refuse_secrets(&self, text: &str, what: &str) -> OrchestratorResult<()> {
        crate::secret_gate::refuse_secrets(&self.scanner(), text, what)
    }
}

/// Where a task's artifacts are kept, beside the worktrees.
pub(crate) fn artifacts_dir(worktrees_dir: &Path, task_id: &TaskId) -> PathBuf {
    worktrees_dir
        .with_file_name("artifacts")
        .join(task_id.as_str())
}
