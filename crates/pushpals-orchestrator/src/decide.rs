//! Deciding approvals, and carrying out what an approval lets happen.

use crate::command_gate::ApprovalScope;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::{Approval, ApprovalAction, ApprovalId, Decision, Task, TaskId};
use serde::Serialize;

/// What a decision led to.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionOutcome {
    /// The decided approval.
    pub approval: Approval,
    /// The task afterwards.
    pub task: Task,
}

impl Orchestrator {
    /// Asks for merging a committed task's branch into the base branch.
    pub async fn request_merge(&self, task_id: &TaskId) -> OrchestratorResult<Approval> {
        self.delivery.request_merge(task_id).await
    }

    /// Decides the single pending approval of a task (of `action`, when
    /// given). Refuses, listing them, when several are pending.
    pub async fn decide_for_task(
        &self,
        task_id: &TaskId,
        action: Option<ApprovalAction>,
        decision: Decision,
        scope: ApprovalScope,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        self.store.task(task_id).await?;
        let pending: Vec<Approval> = self
            .store
            .approvals(Some(task_id.clone()), true)
            .await?
            .into_iter()
            .filter(|a| action.is_none_or(|wanted| a.action == wanted))
            .collect();
        match pending.as_slice() {
            [] => Err(OrchestratorError::NoPendingApproval(task_id.clone())),
            [one] => {
                self.decide(one.id, decision, scope, decided_by, reason)
                    .await
            }
            _ => Err(OrchestratorError::SeveralPending {
                task_id: task_id.clone(),
                pending,
            }),
        }
    }

    /// Decides an approval by its id, then carries out an approved action.
    /// `scope` matters for command approvals: `task` lets the same command
    /// line run without asking for the rest of the task.
    pub async fn decide(
        &self,
        approval_id: ApprovalId,
        decision: Decision,
        scope: ApprovalScope,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let approval = self.store.approval(approval_id).await?;
        match approval.action {
            ApprovalAction::Commit => {
                self.tasks
                    .decide_commit(approval, decision, decided_by, reason)
                    .await
            }
            ApprovalAction::Command => {
                self.gate
                    .decide_command(approval_id, decision, scope, decided_by, reason)
                    .await
            }
            ApprovalAction::Push | ApprovalAction::Pr | ApprovalAction::Merge
                if decision == Decision::Deny =>
            {
                self.deny_delivery(approval, decided_by, reason).await
            }
            ApprovalAction::Push | ApprovalAction::Pr | ApprovalAction::Merge => {
                self.delivery
                    .deliver_approved(approval, decided_by, reason)
                    .await
            }
        }
    }

    /// Denies a push, pull request or merge: recorded, nothing else happens.
    async fn deny_delivery(
        &self,
        approval: Approval,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let by = decided_by.to_owned();
        let approval_id = approval.id;
        let approval = self
            .store
            .write(move |tx| {
                tx.decide_approval(approval_id, Decision::Deny, &by, reason.as_deref())
            })
            .await?;
        let task = self.store.task(&approval.task_id).await?;
        Ok(DecisionOutcome { approval, task })
    }
}
