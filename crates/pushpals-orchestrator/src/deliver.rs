//! Delivery: after a commit, a separate approval pushes the task branch,
//! rebased onto the remote base first when the base moved.
//!
//! Over 400 lines: push, merge and their approvals share the remote, base and credential choices kept here.

use crate::decide::DecisionOutcome;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use crate::repositories::ServedRepo;
use pushpals_core::{
    Actor, Approval, ApprovalAction, ApprovalState, Decision, EventKind, NewEvent, Task,
};
use pushpals_store::TaskUpdate;
use pushpals_workspace::Rebase;
use serde_json::json;
use std::path::Path;

impl Orchestrator {
    /// Asks for merging a committed task's branch into the base branch.
    pub async fn request_merge(
        &self,
        task_id: &pushpals_core::TaskId,
    ) -> OrchestratorResult<Approval> {
        let task = self.store.task(task_id).await?;
        if task.state != pushpals_core::TaskState::Committed {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "only a committed task can be merged".into(),
            });
        }
        let served = self.served(&task.repo)?;
        if served.record.is_clone() {
            return Err(OrchestratorError::DeliveryBlocked(format!(
                "repository {} is a clone Push Pals keeps, not anybody's checkout: a local merge would \
                 reach nobody. Approve the task's push instead and merge it where the repository lives",
                served.name()
            )));
        }
        let Some(base) = self.base_branch_of(&served).await? else {
            return Err(OrchestratorError::DeliveryBlocked(
                "no base branch: set [delivery] base_branch in config.toml".into(),
            ));
        };
        let id = task.id.clone();
        let summary = format!(
            "Merge {} into {base} (fast-forward when possible)",
            task.branch
        );
        Ok(self
            .store
            .write(move |tx| {
                tx.request_approval(
                    &id,
                    ApprovalAction::Merge,
                    &summary,
                    json!({ "base_branch": base }),
                )
            })
            .await?)
    }

    /// Merges for an approved merge approval, unless the base is checked
    /// out somewhere or the branches conflict (then nothing changes and the
    /// approval is offered again).
    async fn merge_approved(&self, approval: &Approval) -> OrchestratorResult<Task> {
        let task = self.store.task(&approval.task_id).await?;
        let served = self.served(&task.repo)?;
        let Some(base) = self.base_branch_of(&served).await? else {
            return Err(OrchestratorError::DeliveryBlocked(
                "no base branch to merge into".into(),
            ));
        };
        let message = format!(
            "Merge {}: {}\n\nPushpals-Task: {}\n",
            task.branch, task.title, task.id
        );
        let merged = served
            .repo
            .merge_into(&base, &task.branch, &message, &self.settings().identity())
            .await?;
        let (kind, head) = match merged {
            pushpals_workspace::Merge::FastForward { head } => ("fast-forward", head),
            pushpals_workspace::Merge::MergeCommit { head } => ("merge commit", head),
            pushpals_workspace::Merge::Conflicts { files } => {
                return Err(OrchestratorError::DeliveryBlocked(format!(
                    "{} and {base} conflict in: {}; nothing was merged",
                    task.branch,
                    files.join(", ")
                )));
            }
            pushpals_workspace::Merge::CheckedOut { worktree } => {
                return Err(OrchestratorError::DeliveryBlocked(format!(
                    "{base} is checked out in {worktree}; merging would change files under you, so nothing was merged. \
                     Run `git merge {}` there yourself, or check out another branch",
                    task.branch
                )));
            }
        };
        let id = task.id.clone();
        self.store
            .write(move |tx| {
                tx.append(NewEvent::for_task(
                    &id,
                    Actor::Orchestrator,
                    EventKind::Merged,
                    json!({ "base_branch": base, "head": head, "kind": kind }),
                ))
            })
            .await?;
        Ok(task)
    }

    /// After a commit: asks for the push, when there is somewhere to push.
    pub(crate) async fn offer_push(&self, task: &Task) -> OrchestratorResult<()> {
        let served = self.served(&task.repo)?;
        let Some(target) = self.delivery_target(&served).await? else {
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
    async fn push_approved(&self, approval: &Approval) -> OrchestratorResult<Task> {
        let task = self.store.task(&approval.task_id).await?;
        let served = self.served(&task.repo)?;
        let Some(target) = self.delivery_target(&served).await? else {
            return Err(OrchestratorError::DeliveryBlocked(format!(
                "repository {} has no remote named {:?}; set [delivery] remote (or [repos.{}] remote) in config.toml",
                served.name(),
                crate::delivery_route::remote_name(&self.settings(), served.name()),
                served.name()
            )));
        };
        let pushed = match self.rebase_and_push(&served, &task, &target).await {
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
        // A continued task's new commits update its open pull request.
        let updates = self
            .opened_pull_request(&task.id)
            .await?
            .map(|opened| opened["url"].clone());
        let task = self
            .store
            .write(move |tx| {
                tx.append(NewEvent::for_task(
                    &id,
                    Actor::Orchestrator,
                    EventKind::Push,
                    json!({
                        "remote": target.remote,
                        "branch": branch,
                        "sha": pushed.head,
                        "rebased_onto": pushed.rebased_onto,
                        "updates_pull_request": updates,
                    }),
                ))?;
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

    /// Carries out an approved push, pull request or merge. The decision is
    /// recorded before anything is done, so a second or concurrent approval
    /// finds it decided (409) and never acts twice; one delivery action per
    /// task runs at a time. When the action cannot be done, the failure is
    /// recorded and the approval is offered again.
    pub(crate) async fn deliver(
        &self,
        approval: Approval,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let task_id = approval.task_id.clone();
        let claim = self
            .deliveries
            .try_claim(&task_id)
            .ok_or_else(|| OrchestratorError::DeliveryInProgress(task_id.clone()))?;
        let detail = self.approval_detail(&approval).await?;
        let approval_id = approval.id;
        let by = decided_by.to_owned();
        let decided = self
            .store
            .write(move |tx| {
                tx.decide_approval(approval_id, Decision::Approve, &by, reason.as_deref())
            })
            .await?;
        let acted = match decided.action {
            ApprovalAction::Push => self.push_approved(&decided).await,
            ApprovalAction::Pr => self.open_approved_pr(&decided, &detail).await,
            _ => self.merge_approved(&decided).await,
        };
        match acted {
            Ok(task) => {
                drop(claim);
                if decided.action == ApprovalAction::Push {
                    // Under an auto-pr grant the offered PR opens at once.
                    self.apply_pr_grant(&task_id).await;
                }
                Ok(DecisionOutcome {
                    approval: decided,
                    task,
                })
            }
            Err(error) => {
                let why = error.to_string();
                self.store
                    .write(move |tx| tx.reopen_approval(approval_id, detail, &why))
                    .await?;
                Err(error)
            }
        }
    }

    /// At start: a push, pull request or merge whose decision was recorded
    /// but whose outcome was not (the server stopped while carrying it out)
    /// is offered again, saying so, instead of staying approved and undone.
    pub(crate) async fn reopen_interrupted_deliveries(&self) -> OrchestratorResult<()> {
        for approval in self.store.approvals(None, false).await? {
            let outcome = match approval.action {
                ApprovalAction::Push => EventKind::Push,
                ApprovalAction::Pr => EventKind::PrOpened,
                ApprovalAction::Merge => EventKind::Merged,
                _ => continue,
            };
            if approval.state != ApprovalState::Approved {
                continue;
            }
            let events = self.task_events(&approval.task_id).await?;
            let Some(decided) = events.iter().rposition(|e| {
                e.kind == EventKind::ApprovalDecided.as_str()
                    && e.payload["approval_id"] == approval.id
            }) else {
                continue;
            };
            if events[decided + 1..]
                .iter()
                .any(|e| e.kind == outcome.as_str())
            {
                continue;
            }
            let detail = self.approval_detail(&approval).await?;
            let id = approval.id;
            tracing::warn!(approval = id, task = %approval.task_id, "a delivery was cut short by a stop; offered again");
            self.store
                .write(move |tx| {
                    tx.reopen_approval(
                        id,
                        detail,
                        "the server stopped while carrying it out; check the remote or forge before approving again",
                    )
                })
                .await?;
        }
        Ok(())
    }

    /// The detail an approval was requested with (its base branch, remote).
    pub(crate) async fn approval_detail(
        &self,
        approval: &Approval,
    ) -> OrchestratorResult<serde_json::Value> {
        Ok(self
            .task_events(&approval.task_id)
            .await?
            .iter()
            .rev()
            .find(|e| {
                e.kind == EventKind::ApprovalRequested.as_str()
                    && e.payload["approval_id"] == approval.id
            })
            .map(|e| e.payload["detail"].clone())
            .unwrap_or(serde_json::Value::Null))
    }

    async fn rebase_and_push(
        &self,
        served: &ServedRepo,
        task: &Task,
        target: &crate::delivery_route::DeliveryTarget,
    ) -> OrchestratorResult<Pushed> {
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
            .rebase_onto(&remote_base, &self.settings().identity())
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
        Ok(Pushed { head, rebased_onto })
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
struct Pushed {
    head: String,
    rebased_onto: Option<String>,
}
