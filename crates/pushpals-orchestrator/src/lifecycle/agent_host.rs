//! Where an external agent runs: on this machine (its program found on
//! this machine's `PATH` or configured, shown read-only to the sandbox with
//! what it needs) or on the run's worker host (the program the worker
//! found; the worker shows it; the agent sees its files where the clone
//! appears in the worker's sandbox, and the gateway is relayed).

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use crate::dispatch::AgentOnWorker;
use crate::settings::ExternalAgentSettings;
use pushpals_agent::external::{self, ExternalAgent};
use pushpals_core::TaskId;
use pushpals_sandbox::{Runner, WorktreeAlias};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The place an external agent's commands run.
pub(super) struct AgentHost {
    /// What runs its version probe and the agent.
    pub(super) runner: Arc<dyn Runner>,
    /// The agent's run on a worker, when it is on one, and the worker.
    pub(super) on_worker: Option<(Arc<AgentOnWorker>, String)>,
    /// Its program, where it runs.
    pub(super) program: PathBuf,
    /// What the sandbox shows read-only for it here (a worker finds its
    /// own).
    pub(super) read_only: Vec<PathBuf>,
    /// Where the agent sees the task's files: the worktree here, the
    /// clone's path in the worker's sandbox there (its writes are judged
    /// against it).
    pub(super) seen_at: String,
    /// The worktree as the worker's sandbox shows it.
    pub(super) alias: Option<WorktreeAlias>,
}

impl AgentHost {
    /// The runner for the version probe when it must be asked each run
    /// (on a worker), else `None` (this machine's, asked once per program).
    pub(super) fn probe_runner(&self) -> Option<&dyn Runner> {
        self.on_worker
            .as_ref()
            .map(|(agent, _)| agent.as_ref() as &dyn Runner)
    }

    /// The record the agent left in `home`: sent back by the worker, or
    /// read here.
    pub(super) fn trajectory(&self, home: &Path, file: Option<&str>) -> Option<String> {
        match (&self.on_worker, file) {
            (Some((agent, _)), _) => agent.take_trajectory(),
            (None, Some(file)) => std::fs::read_to_string(home.join(file)).ok(),
            (None, None) => None,
        }
    }
}

impl Lifecycle {
    /// Where the external agent `name` runs for task `task_id`, in
    /// `worktree` of repository `repo`.
    pub(super) fn agent_host(
        &self,
        task_id: &TaskId,
        repo: &str,
        worktree: &str,
        adapter: &Arc<dyn ExternalAgent>,
        configured: &ExternalAgentSettings,
    ) -> StepResult<AgentHost> {
        let name = adapter.name();
        if let (Some(run), Some(mirrored)) =
            (self.remote.get(task_id), self.remote.mirrored_run(task_id))
        {
            let program = run.agent_program(name).ok_or_else(|| {
                Stop::Failed(format!(
                    "worker {} no longer says it has {name}; install it there with `{}`",
                    run.worker(),
                    adapter.install_hint()
                ))
            })?;
            let stable = crate::worker_host::stable_path(repo);
            let agent = Arc::new(AgentOnWorker::new(mirrored, name, adapter.trajectory()));
            return Ok(AgentHost {
                runner: Arc::clone(&agent) as Arc<dyn Runner>,
                on_worker: Some((agent, run.worker().to_owned())),
                program,
                read_only: Vec::new(),
                seen_at: stable.to_string_lossy().into_owned(),
                alias: Some(crate::worker_host::alias(stable, Path::new(worktree), true)),
            });
        }
        if !self.runner.isolated() {
            return Err(Stop::Failed(format!(
                "{name} runs in its auto-approve mode, so it runs only inside the sandbox, and sandbox = \"none\" has none; use the bubblewrap backend"
            )));
        }
        let search: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect())
            .unwrap_or_default();
        let program =
            external::find_program(adapter.as_ref(), configured.program.as_deref(), &search)
                .map_err(Stop::Failed)?;
        // A venv's interpreter lives where its pyvenv.cfg says: visible too.
        let install_root = external::install_root(&program);
        let read_only = self
            .served(repo)?
            .repo
            .git_common_dir()
            .into_iter()
            .chain(external::venv_base_prefix(&install_root))
            .chain(std::iter::once(install_root))
            .collect();
        Ok(AgentHost {
            runner: Arc::clone(&self.runner),
            on_worker: None,
            program,
            read_only,
            seen_at: worktree.to_owned(),
            alias: None,
        })
    }
}
