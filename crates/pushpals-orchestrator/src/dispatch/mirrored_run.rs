//! An agent's run on a worker host, mirrored: the agent reads and edits
//! files in the server's worktree while its commands run in the worker's
//! clone, so before each command the clone is brought to the worktree's
//! files and after it what the command changed comes back. An external
//! agent is one such command (`agent_on_worker.rs`): it starts from the
//! worktree's files (a continued task's edits too) and its edits come back
//! when it ends.
//!
//! Both sides name what they hold by a git tree (every file but ignored
//! ones: build outputs stay where they were made). The server keeps the
//! tree the two last agreed on; a diff that does not apply, or that leaves
//! either side at another tree than the other says, fails the command
//! rather than letting the two drift apart.

use super::RemoteRun;
use crate::repositories::ServedRepo;
use base64::Engine;
use pushpals_core::worker_wire::{AgentLaunch, Mirror};
use pushpals_sandbox::{BoxFuture, CommandOutcome, CommandSpec, OutputChunk, RunError, Runner};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, watch};

/// A mirrored run on a worker; the task's driver uses it as its runner.
pub(crate) struct MirroredRun {
    run: Arc<RemoteRun>,
    served: Arc<ServedRepo>,
    worktree: PathBuf,
    /// The tree both last held; none until the first command (the clone
    /// then holds the task's base as checked out).
    agreed: Mutex<Option<String>>,
    base: String,
}

impl MirroredRun {
    /// Mirrors `worktree` (the task's, at `base`) into `run`'s clone.
    pub(crate) fn new(
        run: Arc<RemoteRun>,
        served: Arc<ServedRepo>,
        worktree: PathBuf,
        base: String,
    ) -> Self {
        Self {
            run,
            served,
            worktree,
            agreed: Mutex::new(None),
            base,
        }
    }

    fn failed(&self, what: &str, error: impl std::fmt::Display) -> RunError {
        RunError::Worker(format!(
            "worker {}: {what}: {error}; the task's files and the worker's clone could not be \
             kept the same, so the command is not taken",
            self.run.worker()
        ))
    }

    /// This run as a runner whose commands first make the setup's own
    /// cargo home in the clone, with `config` (a setup run again in it).
    pub(crate) fn with_cargo_home(self: &Arc<Self>, config: String) -> WithCargoHome {
        WithCargoHome {
            run: Arc::clone(self),
            config,
        }
    }

    /// Runs one command mirrored (first making the setup's cargo home, or
    /// as an external agent, when asked); how it ended, and the agent's
    /// record when the worker sent one.
    pub(super) async fn run_mirrored(
        &self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
        cargo_home: Option<String>,
        agent: Option<AgentLaunch>,
    ) -> Result<(CommandOutcome, Option<String>), RunError> {
        // One command at a time: each starts from what the last left.
        let mut agreed = self.agreed.lock().await;
        let repo = &self.served.repo;
        let now = repo
            .snapshot_tree(&self.worktree)
            .await
            .map_err(|e| self.failed("cannot read the worktree", e))?;
        let diff = if agreed.as_deref() == Some(now.as_str()) {
            None
        } else {
            let from = agreed.clone().unwrap_or_else(|| self.base.clone());
            let bytes = repo
                .tree_diff(&self.worktree, &from, &now)
                .await
                .map_err(|e| self.failed("cannot diff the worktree", e))?;
            (!bytes.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
        };
        let mirror = Mirror {
            tree: now.clone(),
            diff,
        };
        let ended = self
            .run
            .run_on_worker(
                spec,
                output,
                cancel,
                super::OnWorker {
                    mirror: Some(mirror),
                    in_build: false,
                    cargo_home,
                    agent,
                },
            )
            .await?;
        *agreed = Some(now);
        if let Some((tree, diff)) = ended.changes {
            repo.apply_diff(&self.worktree, &diff)
                .await
                .map_err(|e| self.failed("its changes do not apply to the worktree", e))?;
            let after = repo
                .snapshot_tree(&self.worktree)
                .await
                .map_err(|e| self.failed("cannot read the worktree", e))?;
            if after != tree {
                return Err(self.failed(
                    "its changes left the worktree at another tree",
                    format!("{after}, not {tree}"),
                ));
            }
            *agreed = Some(tree);
        }
        Ok((ended.outcome, ended.trajectory))
    }
}

impl Runner for MirroredRun {
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
            self.run_mirrored(spec, output, cancel, None, None)
                .await
                .map(|(outcome, _)| outcome)
        })
    }
}

/// A mirrored run whose commands first make the setup's cargo home.
pub(crate) struct WithCargoHome {
    run: Arc<MirroredRun>,
    config: String,
}

impl Runner for WithCargoHome {
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
            self.run
                .run_mirrored(spec, output, cancel, Some(self.config.clone()), None)
                .await
                .map(|(outcome, _)| outcome)
        })
    }
}
