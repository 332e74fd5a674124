//! Autonomy grants: what the person lets happen without being asked.
//! Grants never bypass failing checks (the task fails before any approval)
//! or the secret gate (a blocked commit stays waiting for the person).

use crate::authorize::ApprovalScope;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::{ApprovalAction, ApprovalId, Decision, GrantKind, TaskId, TaskState};
use pushpals_store::GrantRecord;

impl Orchestrator {
    /// Gives or takes back a grant in one repository (the only one when
    /// `repo` is `None`); recorded with who did it. Returns that
    /// repository's name and its grants.
    pub async fn set_grant(
        &self,
        repo: Option<&str>,
        kind: GrantKind,
        granted: bool,
        by: &str,
    ) -> OrchestratorResult<(String, Vec<GrantRecord>)> {
        let repo = self.resolve_repo(repo)?.name().to_owned();
        let (by, name) = (by.to_owned(), repo.clone());
        self.store
            .write(move |tx| tx.set_grant(&name, kind, granted, &by))
            .await?;
        let grants = self.store.grants(&repo).await?;
        Ok((repo, grants))
    }

    /// A grant in force in the task's repository.
    async fn grant_in_force(
        &self,
        task_id: &TaskId,
        kind: GrantKind,
    ) -> OrchestratorResult<Option<GrantRecord>> {
        let task = self.store.task(task_id).await?;
        Ok(self
            .store
            .grants(&task.repo)
            .await?
            .into_iter()
            .find(|g| g.kind == kind))
    }

    /// After the checks passed and a commit approval was asked: commits at
    /// once under an auto-commit grant (unless the secret gate blocks).
    pub(crate) async fn apply_commit_grant(&self, task_id: &TaskId, approval_id: ApprovalId) {
        let Ok(Some(grant)) = self.grant_in_force(task_id, GrantKind::AutoCommit).await else {
            return;
        };
        let by = format!("auto-commit grant (given by {})", grant.granted_by);
        match self
            .decide(
                approval_id,
                Decision::Approve,
                ApprovalScope::Once,
                &by,
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(OrchestratorError::SecretsBlocked { .. }) => {
                tracing::info!(%task_id, "auto-commit held back by the secret gate");
            }
            Err(error) => tracing::warn!(%task_id, %error, "auto-commit failed"),
        }
    }

    /// After a commit: pushes at once under an auto-push grant. A push that
    /// cannot go ahead (conflicts) stays waiting for the person.
    pub(crate) async fn apply_push_grant(&self, task_id: &TaskId) {
        let Ok(Some(grant)) = self.grant_in_force(task_id, GrantKind::AutoPush).await else {
            return;
        };
        let Ok(task) = self.store.task(task_id).await else {
            return;
        };
        if task.state != TaskState::Committed {
            return;
        }
        let Ok(pending) = self.store.approvals(Some(task_id.clone()), true).await else {
            return;
        };
        let Some(push) = pending
            .into_iter()
            .find(|a| a.action == ApprovalAction::Push)
        else {
            return;
        };
        let by = format!("auto-push grant (given by {})", grant.granted_by);
        if let Err(error) = self.deliver_approved(push, &by, None).await {
            tracing::info!(%task_id, %error, "auto-push held back");
        }
    }

    /// After a push: opens the pull request at once under an auto-pr grant.
    pub(crate) async fn apply_pr_grant(&self, task_id: &TaskId) {
        let Ok(Some(grant)) = self.grant_in_force(task_id, GrantKind::AutoPr).await else {
            return;
        };
        let Ok(pending) = self.store.approvals(Some(task_id.clone()), true).await else {
            return;
        };
        let Some(pr) = pending.into_iter().find(|a| a.action == ApprovalAction::Pr) else {
            return;
        };
        let by = format!("auto-pr grant (given by {})", grant.granted_by);
        // Boxed: a push's delivery comes here, and this delivers again.
        if let Err(error) = self.delivery.deliver(pr, &by, None).await {
            tracing::info!(%task_id, %error, "auto-pr held back");
        }
    }
}
