//! Merging a committed task branch into the base branch locally, after
//! its approval: a fast-forward when possible, else a merge commit made
//! without a working tree; never a branch checked out somewhere.

use super::Delivery;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_core::payload::MergeDone;
use pushpals_core::{Actor, Approval, ApprovalAction, NewEvent, Task};
use serde_json::json;

impl Delivery {
    /// Asks for merging a committed task's branch into the base branch.
    pub(crate) async fn request_merge(
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
        let served = self.repos.served(&task.repo)?;
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
    pub(super) async fn merge_approved(&self, approval: &Approval) -> OrchestratorResult<Task> {
        let task = self.store.task(&approval.task_id).await?;
        let served = self.repos.served(&task.repo)?;
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
            .merge_into(
                &base,
                &task.branch,
                &message,
                &self.settings.get().identity(),
            )
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
        let event = NewEvent::typed(
            Some(&task.id),
            Actor::Orchestrator,
            &MergeDone {
                base_branch: base,
                head,
                kind: kind.to_owned(),
            },
        )?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(task)
    }
}
