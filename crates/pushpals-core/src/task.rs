//! Tasks and their state machine.
//!
//! ```text
//! queued → preparing → running → checking → awaiting_approval → committed
//!                          ⇅          ⇅   └──────→ no_changes
//!                       waiting    waiting    (a command asks for approval)
//! any live state → failed | cancelled | interrupted;  awaiting_approval → rejected
//! an ended task → queued again when the person continues it (a new run in
//! the same worktree and branch)
//! ```
//! Every change goes through [`TaskState::transition`]; an edge that is not in
//! the table is an error, never a silent change.

use crate::ids::TaskId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Created, waiting for a free worker slot.
    Queued,
    /// Its worktree and branch are being made.
    Preparing,
    /// Its worker runs.
    Running,
    /// A command of its worker or checks waits for the person's approval.
    Waiting,
    /// The repository's checks run.
    Checking,
    /// A diff is ready and waits for an approval to commit.
    AwaitingApproval,
    /// The change is committed on the task's branch.
    Committed,
    /// The worker finished without changing anything.
    NoChanges,
    /// The worker, a check or the commit failed; the reason is in the log.
    Failed,
    /// The person cancelled it.
    Cancelled,
    /// The person denied the commit.
    Rejected,
    /// The orchestrator stopped while the task was live.
    Interrupted,
}

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a task cannot go from {from} to {to}")]
pub struct InvalidTransition {
    /// The state the task is in.
    pub from: TaskState,
    /// The state that was asked for.
    pub to: TaskState,
}

impl TaskState {
    /// All states, in lifecycle order.
    pub const ALL: [TaskState; 12] = [
        Self::Queued,
        Self::Preparing,
        Self::Running,
        Self::Waiting,
        Self::Checking,
        Self::AwaitingApproval,
        Self::Committed,
        Self::NoChanges,
        Self::Failed,
        Self::Cancelled,
        Self::Rejected,
        Self::Interrupted,
    ];

    /// The state's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Preparing => "preparing",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Checking => "checking",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Committed => "committed",
            Self::NoChanges => "no_changes",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses a stored state name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// True when nothing more happens to the task on its own or by approval
    /// (the person may still continue it: a new run).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Committed
                | Self::NoChanges
                | Self::Failed
                | Self::Cancelled
                | Self::Rejected
                | Self::Interrupted
        )
    }

    /// True while a worker, a check or the preparation is under way: these
    /// are the states a restart interrupts.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Preparing | Self::Running | Self::Waiting | Self::Checking
        )
    }

    /// Whether the edge `self → to` exists.
    pub fn can_become(self, to: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, to),
            (Queued, Preparing | Cancelled | Failed)
                | (Preparing, Running | Failed | Cancelled | Interrupted)
                | (
                    Running,
                    Waiting | Checking | Failed | Cancelled | Interrupted
                )
                | (
                    Waiting,
                    Running | Checking | Failed | Cancelled | Interrupted
                )
                | (
                    Checking,
                    Waiting | AwaitingApproval | NoChanges | Failed | Cancelled | Interrupted
                )
                | (AwaitingApproval, Committed | Rejected | Cancelled | Failed)
                | (
                    Committed | NoChanges | Failed | Cancelled | Rejected | Interrupted,
                    Queued
                )
        )
    }

    /// Checks the edge `self → to` and returns the new state.
    pub fn transition(self, to: TaskState) -> Result<TaskState, InvalidTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit of work: one worker run on its own branch and worktree, then checks
/// and an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    /// The task's id; its branch is `pushpals/<id>`.
    #[schema(value_type = String)]
    pub id: TaskId,
    /// Its number, counting from 1 in creation order (`#3` in chat).
    pub seq: u64,
    /// The name of the repository it works in.
    pub repo: String,
    /// What the person asked for; the commit subject.
    pub title: String,
    /// The command line the command worker runs.
    pub command: Option<String>,
    /// Where the task is in its life.
    pub state: TaskState,
    /// The commit the task's branch starts from, once prepared.
    pub base_commit: Option<String>,
    /// The task's branch.
    pub branch: String,
    /// The task's worktree, once prepared and until removed.
    pub worktree_path: Option<String>,
    /// Why the task failed, was interrupted or rejected.
    pub reason: Option<String>,
    /// The commit made on approval.
    pub commit_sha: Option<String>,
    /// When the task was created (RFC 3339).
    pub created_at: String,
    /// When the task last changed (RFC 3339).
    pub updated_at: String,
    /// An agent task's brief; `None` for a command task.
    pub agent: Option<crate::work::AgentWork>,
    /// What its model calls used, summed.
    pub usage: crate::work::Usage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_allowed() {
        use TaskState::*;
        let path = [
            Queued,
            Preparing,
            Running,
            Waiting,
            Running,
            Checking,
            AwaitingApproval,
            Committed,
        ];
        for pair in path.windows(2) {
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]));
        }
    }

    #[test]
    fn final_states_lead_only_back_to_the_queue() {
        for from in TaskState::ALL.into_iter().filter(|s| s.is_final()) {
            for to in TaskState::ALL {
                let allowed = to == TaskState::Queued;
                assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn skipping_steps_is_an_error() {
        let err = TaskState::Queued
            .transition(TaskState::Committed)
            .unwrap_err();
        assert_eq!(err.to_string(), "a task cannot go from queued to committed");
        assert!(TaskState::Running.transition(TaskState::Rejected).is_err());
        assert!(
            TaskState::Checking
                .transition(TaskState::Committed)
                .is_err()
        );
    }

    #[test]
    fn names_round_trip() {
        for state in TaskState::ALL {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(TaskState::parse("done"), None);
    }
}
