//! Delivery: after a commit, a separate approval pushes the task branch,
//! rebased onto the remote base first when the base moved.

use crate::decide::DecisionOutcome;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::{Actor, Approval, ApprovalAction, Decision, EventKind, NewEvent, Task};
use pushpals_store::TaskUpdate;
use pushpals_workspace::Rebase;
use serde_json::json;
use std::path::Path;

impl Orchestrator {
    /// The remote and base branch pushes go to, when the repository has
    /// the configured remote.
    async fn delivery_target(&self) -> OrchestratorResult<Option<(String, String)>> {
        let remote = self.settings.delivery.remote.clone();
        if !self.repo.has_remote(&remote).await? {
            return Ok(None);
        }
        let base = match &self.settings.delivery.base_branch {
            Some(base) => base.clone(),
            None => match self.repo.current_branch().await? {
                Some(branch) => branch,
                None => return Ok(None),
            },
        };
        Ok(Some((remote, base)))
    }

    /// After a commit: asks for the push, when there is somewhere to push.
    pub(crate) async fn offer_push(&self, task: &Task) -> OrchestratorResult<()> {
        let Some((remote, base)) = self.delivery_target().await? else {
            return Ok(());
        };
        let id = task.id.clone();
        let summary = format!(
            "Push {} to {remote} (rebased onto {remote}/{base} first if it moved)",
            task.branch
        );
        self.store
            .write(move |tx| {
                tx.request_approval(
                    &id,
                    ApprovalAction::Push,
                    &summary,
                    json!({ "remote": remote, "base_branch": base }),
                )
            })
            .await?;
        Ok(())
    }

    /// Decides a push approval. Approving fetches the base, rebases the
    /// task branch when the base moved, and pushes; on conflicts nothing is
    /// pushed, the approval stays pending and the error names the files.
    pub(crate) async fn decide_push(
        &self,
        approval: Approval,
        decision: Decision,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let task = self.store.task(&approval.task_id).await?;
        let approval_id = approval.id;
        let by = decided_by.to_owned();
        if decision == Decision::Deny {
            let approval = self
                .store
                .write(move |tx| tx.decide_approval(approval_id, decision, &by, reason.as_deref()))
                .await?;
            return Ok(DecisionOutcome { approval, task });
        }
        let Some((remote, base)) = self.delivery_target().await? else {
            return Err(OrchestratorError::DeliveryBlocked(format!(
                "the repository has no remote named {:?}; set [delivery] remote in config.toml",
                self.settings.delivery.remote
            )));
        };
        let pushed = match self.rebase_and_push(&task, &remote, &base).await {
            Ok(pushed) => pushed,
            Err(error) => {
                let id = task.id.clone();
                let message = error.to_string();
                self.store
                    .write(move |tx| {
                        tx.append(NewEvent::for_task(
                            &id,
                            Actor::Orchestrator,
                            EventKind::PushBlocked,
                            json!({ "reason": message }),
                        ))
                    })
                    .await?;
                return Err(error);
            }
        };
        let id = task.id.clone();
        let branch = task.branch.clone();
        let (approval, task) = self
            .store
            .write(move |tx| {
                let approval = tx.decide_approval(approval_id, decision, &by, reason.as_deref())?;
                tx.append(NewEvent::for_task(
                    &id,
                    Actor::Orchestrator,
                    EventKind::Push,
                    json!({
                        "remote": remote,
                        "branch": branch,
                        "sha": pushed.head,
                        "rebased_onto": pushed.rebased_onto,
                    }),
                ))?;
                let task = tx.update_task(
                    &id,
                    TaskUpdate {
                        base_commit: pushed.rebased_onto.clone(),
                        commit_sha: Some(pushed.head.clone()),
                        ..TaskUpdate::default()
                    },
                )?;
                Ok((approval, task))
            })
            .await?;
        self.offer_pr(&task, &base).await?;
        self.apply_pr_grant(&task.id).await;
        Ok(DecisionOutcome { approval, task })
    }

    async fn rebase_and_push(
        &self,
        task: &Task,
        remote: &str,
        base: &str,
    ) -> OrchestratorResult<Pushed> {
        let (Some(path), Some(base_commit), Some(head)) = (
            task.worktree_path.clone(),
            task.base_commit.clone(),
            task.commit_sha.clone(),
        ) else {
            return Err(OrchestratorError::DeliveryBlocked(format!(
                "task {} has no commit and worktree to push",
                task.id
            )));
        };
        let remote_base = self.repo.fetch_base(remote, base).await.map_err(|e| {
            OrchestratorError::DeliveryBlocked(format!("cannot fetch {remote}/{base}: {e}"))
        })?;
        let worktree = self.repo.worktree(Path::new(&path), &base_commit);
        let (head, rebased_onto) = match worktree
            .rebase_onto(&remote_base, &self.settings.identity())
            .await?
        {
            Rebase::NotNeeded => (head, None),
            Rebase::Rebased { head } => (head, Some(remote_base)),
            Rebase::Conflicts { files } => {
                return Err(OrchestratorError::DeliveryBlocked(format!(
                    "{remote}/{base} moved and the task's changes conflict with it in: {}; nothing was pushed. \
                     Continue the task from the new base, or resolve by hand",
                    files.join(", ")
                )));
            }
        };
        self.repo
            .push_branch(remote, &task.branch)
            .await
            .map_err(|e| OrchestratorError::DeliveryBlocked(format!("the push failed: {e}")))?;
        Ok(Pushed { head, rebased_onto })
    }
}

/// What a push did.
struct Pushed {
    head: String,
    rebased_onto: Option<String>,
}
