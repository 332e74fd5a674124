//! Dependencies between tasks: a task whose brief depends on others starts
//! once they are committed (or ended without changes), from the last one's
//! commit, and fails if one of them ends any other way.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use pushpals_core::{TaskId, TaskState};
use std::time::Duration;
use tokio::sync::watch;

/// How often waiting tasks look again even without a state change seen.
const RECHECK: Duration = Duration::from_secs(5);

impl Lifecycle {
    /// Waits until the task's dependencies are done; returns the commit to
    /// start from (the last dependency's), or `None` for the repository's
    /// HEAD.
    pub(crate) async fn dependencies_base(
        &self,
        task_id: &TaskId,
        cancel: &mut watch::Receiver<bool>,
    ) -> StepResult<Option<String>> {
        let task = self.store.task(task_id).await?;
        let depends_on = task.agent.map(|w| w.depends_on).unwrap_or_default();
        if depends_on.is_empty() || task.worktree_path.is_some() {
            // A continued task keeps its worktree and its base.
            return Ok(None);
        }
        let mut events = self.store.subscribe();
        loop {
            let mut base = None;
            let mut pending = false;
            for dependency in &depends_on {
                let other = self.store.task(dependency).await?;
                match other.state {
                    TaskState::Committed => base = other.commit_sha.or(base),
                    TaskState::NoChanges => {}
                    state if state.is_final() => {
                        return Err(Stop::Failed(format!(
                            "it depends on task {dependency}, which ended {state}; continue that \
                             task, then continue this one"
                        )));
                    }
                    _ => pending = true,
                }
            }
            if !pending {
                return Ok(base);
            }
            if *cancel.borrow() {
                return Err(Stop::Superseded);
            }
            tokio::select! {
                _ = events.recv() => {}
                _ = cancel.changed() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
            let current = self.store.task(task_id).await?;
            if current.state != TaskState::Queued {
                return Err(Stop::Superseded);
            }
        }
    }
}
