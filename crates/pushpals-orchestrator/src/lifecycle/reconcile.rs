//! At start, what a stop cut short is settled, so nothing is half-done and
//! nothing is stuck: overlay worktrees a reboot unmounted are mounted
//! again, a worktree made for a task that never recorded it is
//! swept, and a commit approval decided without its commit recorded is
//! either recorded (the commit is on the branch) or offered again.

use super::Lifecycle;
use crate::error::OrchestratorResult;
use crate::repositories::ServedRepo;
use pushpals_core::{ApprovalAction, ApprovalState, Task, TaskState};
use serde_json::json;

impl Lifecycle {
    /// Settles what the last stop cut short.
    pub(crate) async fn settle_cut_short(&self) -> OrchestratorResult<()> {
        for task in self.store.tasks(None).await? {
            // A repository that cannot be opened leaves its tasks as they
            // are (`repo list` says why).
            let Some(served) = self.repos.get(&task.repo) else {
                continue;
            };
            // Overlay worktrees a reboot unmounted are mounted again first.
            if let Some(path) = &task.worktree_path {
                match served.repo.remount_worktree(std::path::Path::new(path)) {
                    Ok(true) => {
                        tracing::info!(task = %task.id, "mounted the task's worktree again")
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(task = %task.id, %error, "cannot mount the task's worktree again")
                    }
                }
            }
            // Only a task the stop interrupted can have been preparing.
            if task.state == TaskState::Interrupted
                && task.worktree_path.is_none()
                && task.base_commit.is_none()
            {
                self.sweep_unrecorded_worktree(&served, &task).await?;
            } else if task.state == TaskState::AwaitingApproval {
                self.settle_half_commit(&served, &task).await?;
            }
        }
        Ok(())
    }

    /// Unmounts the tasks' overlay worktrees as the server stops, so the
    /// data directory can be moved or removed; the next start mounts them
    /// again.
    pub(crate) async fn release_worktrees(&self) {
        let Ok(tasks) = self.store.tasks(None).await else {
            return;
        };
        for task in tasks {
            if let Some(path) = &task.worktree_path {
                let path = std::path::Path::new(path);
                self.runner.release(path).await;
                if let Some(served) = self.repos.get(&task.repo) {
                    served.repo.unmount_worktree(path);
                }
            }
        }
    }

    /// A task stopped while `preparing` may have a worktree and branch it
    /// never recorded: `du` and `gc` would not see them. Its next run makes
    /// them afresh, so they go now.
    async fn sweep_unrecorded_worktree(
        &self,
        served: &ServedRepo,
        task: &Task,
    ) -> OrchestratorResult<()> {
        let path = self.worktree_path(&task.id);
        let branch = task.id.branch();
        if !path.exists() && served.repo.branch_commit(&branch).await?.is_none() {
            return Ok(());
        }
        tracing::warn!(task = %task.id, path = %path.display(), "swept a worktree a stop left unrecorded");
        served
            .repo
            .clear_unrecorded_worktree(&path, &branch)
            .await?;
        Ok(())
    }

    /// A task awaiting approval with no approval pending had its commit
    /// approved when the server stopped: the commit is recorded when git
    /// made it, else the approval is offered again.
    async fn settle_half_commit(&self, served: &ServedRepo, task: &Task) -> OrchestratorResult<()> {
        let approvals = self.store.approvals(Some(task.id.clone()), false).await?;
        if approvals.iter().any(|a| a.state == ApprovalState::Pending) {
            return Ok(());
        }
        let Some(decided) = approvals
            .iter()
            .rev()
            .find(|a| a.action == ApprovalAction::Commit && a.state == ApprovalState::Approved)
        else {
            return Ok(());
        };
        let recorded = task.commit_sha.clone().or_else(|| task.base_commit.clone());
        let head = served.repo.branch_commit(&task.branch).await?;
        let ours = match &head {
            Some(head) if Some(head) != recorded.as_ref() => served
                .repo
                .commit_message(head)
                .await?
                .contains(&format!("Pushpals-Task: {}", task.id)),
            _ => false,
        };
        let id = task.id.clone();
        match head.filter(|_| ours) {
            Some(sha) => {
                tracing::warn!(task = %id, %sha, "recorded a commit a stop left unrecorded");
                let message = served.repo.commit_message(&sha).await?;
                let committed = self.record_commit(task, sha, message, true).await?;
                self.delivery.offer_push(&committed).await?;
            }
            None => {
                tracing::warn!(task = %id, "a commit approval a stop cut short is offered again");
                let approval_id = decided.id;
                self.store
                    .write(move |tx| {
                        tx.reopen_approval(
                            approval_id,
                            json!(null),
                            "the server stopped before the commit was made; nothing was committed",
                        )
                    })
                    .await?;
            }
        }
        Ok(())
    }
}
