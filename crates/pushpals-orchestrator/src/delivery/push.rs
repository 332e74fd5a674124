//! Pushing a committed task branch after its approval: the base fetched,
//! the branch rebased onto it when it moved, nothing pushed on conflicts.

use super::Delivery;
use super::route::DeliveryTarget;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::repositories::ServedRepo;
use pushpals_core::payload::{PushBlocked, Pushed};
use pushpals_core::{Actor, Approval, ApprovalAction, NewEvent, Task};
use pushpals_store::TaskUpdate;
use pushpals_workspace::Rebase;
use serde_json::json;
use std::path::Path;

impl Delivery {
    /// After a commit: asks for the push, when there is somewhere to push.
    pub(crate) async fn offer_push(&self, task: &Task) -> OrchestratorResult<()> {
        let served = self.repos.served(&task.repo)?;
        let Some(target) = self.target(&served).await? else {
            return Ok(());
        };
        let (remote, base) = (target.remote, target.base);
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

    /// Pushes for an approved push approval: fetches the base, rebases the
    /// task branch when the base moved, and pushes; on conflicts nothing is
    /// pushed, and the error names the files.
    pub(super) async fn push_approved(&self, approval: &Approval) -> OrchestratorResult<Task> {
        let task = self.store.task(&approval.task_id).await?;
        let served = self.repos.served(&task.repo)?;
        let Some(target) = self.target(&served).await? else {
            return Err(OrchestratorError::DeliveryBlocked(format!(
                "repository {} has no remote named {:?}; set [delivery] remote (or [repos.{}] remote) in config.toml",
                served.name(),
                super::route::remote_name(&self.settings.get(), served.name()),
                served.name()
            )));
        };
        let pushed = match self.rebase_and_push(&served, &task, &target).await {
            Ok(pushed) => pushed,
            Err(error) => {
                let blocked = NewEvent::typed(
                    Some(&task.id),
                    Actor::Orchestrator,
                    &PushBlocked {
                        reason: error.to_string(),
                    },
                )?;
                self.store.write(move |tx| tx.append(blocked)).await?;
                return Err(error);
            }
        };
        let id = task.id.clone();
        let branch = task.branch.clone();
        // A continued task's new commits update its open pull request.
        let updates = self
            .opened_pull_request(&task.id)
            .await?
            .map(|opened| opened.url);
        let event = NewEvent::typed(
            Some(&id),
            Actor::Orchestrator,
            &Pushed {
                remote: target.remote.clone(),
                branch,
                sha: pushed.head.clone(),
                rebased_onto: pushed.rebased_onto.clone(),
                updates_pull_request: updates,
            },
        )?;
        let task = self
            .store
            .write(move |tx| {
                tx.append(event)?;
                tx.update_task(
                    &id,
                    TaskUpdate {
                        base_commit: pushed.rebased_onto.clone(),
                        commit_sha: Some(pushed.head.clone()),
                        ..TaskUpdate::default()
                    },
                )
            })
            .await?;
        // The push is done and recorded: what follows only offers more.
        if let Err(error) = self.offer_pr(&task, &target.base).await {
            tracing::warn!(task = %task.id, %error, "cannot offer the pull request");
        }
        Ok(task)
    }

    async fn rebase_and_push(
        &self,
        served: &ServedRepo,
        task: &Task,
        target: &DeliveryTarget,
    ) -> OrchestratorResult<PushOutcome> {
        let (remote, base) = (target.remote.as_str(), target.base.as_str());
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
        let credential = self.remote_credential(served, target)?;
        let remote_base = served
            .base_fetches
            .fetch(&served.repo, remote, base, credential.as_ref())
            .await
            .map_err(|e| {
                OrchestratorError::DeliveryBlocked(format!(
                    "cannot fetch {remote}/{base}: {e}{}",
                    credentials_hint(&e, served.name())
                ))
            })?;
        let worktree = served.repo.worktree(Path::new(&path), &base_commit);
        let (head, rebased_onto) = match worktree
            .rebase_onto(&remote_base, &self.settings.get().identity())
            .await?
        {
            Rebase::NotNeeded => (head, None),
            Rebase::Rebased { head } => (head, Some(remote_base)),
            Rebase::Conflicts { files } => {
                return Err(OrchestratorError::DeliveryBlocked(format!(
                    "{remote}/{base} moved and the task's changes conflict with it in: {}; nothing was pushed. \
                     Hand the task back with `pushpals continue {} --run \"...\"`, or resolve by hand",
                    files.join(", "),
                    task.id
                )));
            }
        };
        served
            .repo
            .push_branch(remote, &task.branch, credential.as_ref())
            .await
            .map_err(|e| {
                OrchestratorError::DeliveryBlocked(format!(
                    "the push failed: {e}{}",
                    credentials_hint(&e, served.name())
                ))
            })?;
        Ok(PushOutcome { head, rebased_onto })
    }
}

/// What to do when git failed for want of credentials: which settings
/// give the remote a token.
fn credentials_hint(error: &pushpals_workspace::GitError, repo: &str) -> String {
    if !error.needs_credentials() {
        return String::new();
    }
    format!(
        ". The remote wants credentials: name the variable holding its token as \
         [repos.{repo}] token_env in config.toml (or [delivery] token_env with token_host = its \
         host), or set up a git credential helper or SSH key for the server's user"
    )
}

/// What a push did.
struct PushOutcome {
    head: String,
    rebased_onto: Option<String>,
}
