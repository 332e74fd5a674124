//! Approval requests: what waits for the person, and their decisions.

use crate::ids::{ApprovalId, TaskId};
use serde::{Deserialize, Serialize};

/// What an approval lets happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalAction {
    /// Commit the task's diff on its branch.
    Commit,
    /// Push the task's branch.
    Push,
    /// Open a pull request.
    Pr,
    /// Run a command that policy marked `ask`.
    Command,
    /// Merge the task branch into the base branch locally.
    Merge,
}

impl ApprovalAction {
    /// The action's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Push => "push",
            Self::Pr => "pr",
            Self::Command => "command",
            Self::Merge => "merge",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Commit,
            Self::Push,
            Self::Pr,
            Self::Command,
            Self::Merge,
        ]
        .into_iter()
        .find(|action| action.as_str() == name)
    }
}

/// What the person may let happen without being asked, per repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GrantKind {
    /// Commit when the checks pass and the secret gate is clean.
    AutoCommit,
    /// Push a committed task branch.
    AutoPush,
    /// Open a pull request for a pushed task branch.
    AutoPr,
}

impl GrantKind {
    /// The grant's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoCommit => "auto-commit",
            Self::AutoPush => "auto-push",
            Self::AutoPr => "auto-pr",
        }
    }

    /// Parses a grant's name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::AutoCommit, Self::AutoPush, Self::AutoPr]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for the person.
    Pending,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// Withdrawn because its task was cancelled.
    Withdrawn,
}

impl ApprovalState {
    /// The state's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Withdrawn]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// The person's answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Let it happen.
    Approve,
    /// Do not let it happen.
    Deny,
}

impl Decision {
    /// The approval state this decision leads to.
    pub fn resulting_state(self) -> ApprovalState {
        match self {
            Self::Approve => ApprovalState::Approved,
            Self::Deny => ApprovalState::Denied,
        }
    }
}

/// A request for the person's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// The approval's own id.
    pub id: ApprovalId,
    /// The task it belongs to.
    #[schema(value_type = String)]
    pub task_id: TaskId,
    /// What it lets happen.
    pub action: ApprovalAction,
    /// Where it stands.
    pub state: ApprovalState,
    /// What exactly will happen, for the person to read.
    pub summary: String,
    /// When it was asked (RFC 3339).
    pub requested_at: String,
    /// When it was decided (RFC 3339).
    pub decided_at: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The reason given with the decision.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for action in [
            ApprovalAction::Commit,
            ApprovalAction::Push,
            ApprovalAction::Pr,
            ApprovalAction::Command,
        ] {
            assert_eq!(ApprovalAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(ApprovalAction::parse("merge"), Some(ApprovalAction::Merge));
        assert_eq!(ApprovalAction::parse("rebase"), None);
        for kind in [
            GrantKind::AutoCommit,
            GrantKind::AutoPush,
            GrantKind::AutoPr,
        ] {
            assert_eq!(GrantKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(GrantKind::parse("auto-merge"), None);
        assert_eq!(
            ApprovalState::parse(Decision::Deny.resulting_state().as_str()),
            Some(ApprovalState::Denied)
        );
    }
}
