//! Delivery under autonomy grants: after a commit, the push is offered and
//! carried out at once under an auto-push grant; after a push, the pull
//! request under an auto-pr grant. What cannot go ahead stays waiting for
//! the person.

use super::Delivery;
use crate::autonomy::grant_in_force;
use crate::decide::DecisionOutcome;
use crate::error::OrchestratorResult;
use pushpals_core::{Approval, ApprovalAction, GrantKind, Task, TaskId, TaskState};

impl Delivery {
    /// Carries out an approved push, pull request or merge, then, after a
    /// push, opens the offered pull request at once under an auto-pr grant.
    pub(crate) async fn deliver_approved(
        &self,
        approval: Approval,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let outcome = self.deliver(approval, decided_by, reason).await?;
        if outcome.approval.action == ApprovalAction::Push {
            self.apply_pr_grant(&outcome.task.id).await;
        }
        Ok(outcome)
    }

    /// After a commit: offers its push, and pushes at once under an
    /// auto-push grant.
    pub(crate) async fn after_commit(&self, task: &Task) -> OrchestratorResult<()> {
        self.offer_push(task).await?;
        self.apply_push_grant(&task.id).await;
        Ok(())
    }

    /// Pushes at once under an auto-push grant. A push that cannot go
    /// ahead (conflicts) stays waiting for the person.
    async fn apply_push_grant(&self, task_id: &TaskId) {
        let Ok(Some(grant)) = grant_in_force(&self.store, task_id, GrantKind::AutoPush).await
        else {
            return;
        };
        let Ok(task) = self.store.task(task_id).await else {
            return;
        };
        if task.state != TaskState::Committed {
            return;
        }
        let Some(push) = self.pending(task_id, ApprovalAction::Push).await else {
            return;
        };
        let by = format!("auto-push grant (given by {})", grant.granted_by);
        if let Err(error) = self.deliver_approved(push, &by, None).await {
            tracing::info!(%task_id, %error, "auto-push held back");
        }
    }

    /// After a push: opens the pull request at once under an auto-pr grant.
    async fn apply_pr_grant(&self, task_id: &TaskId) {
        let Ok(Some(grant)) = grant_in_force(&self.store, task_id, GrantKind::AutoPr).await else {
            return;
        };
        let Some(pr) = self.pending(task_id, ApprovalAction::Pr).await else {
            return;
        };
        let by = format!("auto-pr grant (given by {})", grant.granted_by);
        if let Err(error) = self.deliver(pr, &by, None).await {
            tracing::info!(%task_id, %error, "auto-pr held back");
        }
    }

    /// The task's pending approval of `action`, if any.
    async fn pending(&self, task_id: &TaskId, action: ApprovalAction) -> Option<Approval> {
        self.store
            .approvals(Some(task_id.clone()), true)
            .await
            .ok()?
            .into_iter()
            .find(|a| a.action == action)
    }
}
