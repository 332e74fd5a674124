//! Delivery, a part of the orchestrator: after a commit, pushing the task
//! branch (rebased onto the remote base first when it moved), opening its
//! pull request, or merging it locally, each after its own approval. It
//! owns its claims (one delivery action per task at a time) and reads the
//! store, the repositories, the settings and the secret rules through the
//! handles it was given; nothing else reaches into it.

mod claims;
mod grants;
mod merge;
mod pull_request;
mod push;
pub(crate) mod route;

use crate::current::Current;
use crate::decide::DecisionOutcome;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::repositories::Repositories;
use crate::settings::Settings;
use claims::DeliveryClaims;
use pushpals_core::{Approval, ApprovalAction, ApprovalState, Decision, EventKind, TaskId};
use pushpals_store::Store;
use pushpals_workspace::SecretScanner;
use std::sync::Arc;

/// See the module's documentation.
pub(crate) struct Delivery {
    store: Store,
    repos: Arc<Repositories>,
    settings: Arc<Current<Settings>>,
    secrets: Arc<Current<SecretScanner>>,
    claims: DeliveryClaims,
}

impl Delivery {
    /// A delivery part over these handles.
    pub(crate) fn new(
        store: Store,
        repos: Arc<Repositories>,
        settings: Arc<Current<Settings>>,
        secrets: Arc<Current<SecretScanner>>,
    ) -> Self {
        Self {
            store,
            repos,
            settings,
            secrets,
            claims: DeliveryClaims::default(),
        }
    }

    /// A task's events, oldest first.
    async fn task_events(&self, task_id: &TaskId) -> OrchestratorResult<Vec<pushpals_core::Event>> {
        Ok(self.store.task_events(task_id).await?)
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
            .claims
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
}
