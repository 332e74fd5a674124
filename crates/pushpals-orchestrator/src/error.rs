//! The orchestrator's errors.

use pushpals_core::{Approval, ApprovalId, TaskId, TaskState};
use pushpals_store::StoreError;
use pushpals_workspace::{GitError, SecretFinding};

/// What can go wrong when asking the orchestrator to act.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The store failed or refused (unknown ids, decided twice, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The request itself is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The task is not in a state where this can be done.
    #[error("task {task_id} is {state}: {what}")]
    WrongState {
        /// The task.
        task_id: TaskId,
        /// Its state.
        state: TaskState,
        /// What cannot be done and why.
        what: String,
    },
    /// The task has no pending approval.
    #[error("task {0} has no pending approval")]
    NoPendingApproval(TaskId),
    /// The task has several pending approvals and none was picked.
    #[error("task {task_id} has several pending approvals ({}); pick one with --action or decide by approval id", list(.pending))]
    SeveralPending {
        /// The task.
        task_id: TaskId,
        /// Its pending approvals.
        pending: Vec<Approval>,
    },
    /// The secret gate blocks the commit.
    #[error("the commit of task {task_id} is blocked by the secret gate: {}; change those lines, or mark a finding a false positive (`pushpals false-positive {task_id} <fingerprint> --reason ...`)", describe(.findings))]
    SecretsBlocked {
        /// The task.
        task_id: TaskId,
        /// The findings still open (masked).
        findings: Vec<SecretFinding>,
    },
    /// Delivery cannot go ahead (conflicts with the moved base, no remote,
    /// git refused); nothing was pushed.
    #[error("{0}")]
    DeliveryBlocked(String),
    /// Another push, pull request or merge of the task is under way.
    #[error(
        "a push, pull request or merge of task {0} is under way; wait for it to finish, then look at the task's approvals again"
    )]
    DeliveryInProgress(TaskId),
    /// A remote (clone, fetch) failed; what it said, without credentials.
    #[error("{0}")]
    Remote(String),
    /// What the request names exists but cannot be used now.
    #[error("{0}")]
    Unavailable(String),
    /// Something inside the orchestrator failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// An event's payload could not be encoded.
    #[error("internal error: cannot encode an event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The approval is for an action this build cannot carry out yet.
    #[error("approval {0} is for an action this version cannot carry out")]
    UnsupportedAction(ApprovalId),
}

fn describe(findings: &[SecretFinding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{}:{} {} {} [{}]",
                f.file, f.line, f.rule, f.masked, f.fingerprint
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn list(pending: &[Approval]) -> String {
    pending
        .iter()
        .map(|a| format!("#{} {}", a.id, a.action.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shorthand for orchestrator results.
pub type OrchestratorResult<T> = Result<T, OrchestratorError>;
