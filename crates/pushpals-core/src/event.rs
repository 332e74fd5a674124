//! Events: every observable step, as it is stored in the append-only log.

use crate::ids::{EventId, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What kind of step an event records. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The orchestrator started serving.
    ServerStarted,
    /// A task was created.
    TaskCreated,
    /// A task moved from one state to another.
    StateChanged,
    /// The base branch was fetched before a task started (which commit the
    /// task starts from, and why).
    BaseFetched,
    /// Fetching the base branch before a task failed (why; whether it is
    /// tried again or the task starts from the last fetched base).
    BaseFetchFailed,
    /// A task's worktree and branch were made.
    WorktreeCreated,
    /// A task's worktree and branch were removed.
    WorktreeRemoved,
    /// A command started.
    CommandStarted,
    /// A chunk of a command's output.
    Output,
    /// A command ended (exit code, duration, output blob).
    CommandFinished,
    /// A check ended.
    CheckResult,
    /// A task's diff against its base.
    Diff,
    /// An approval was asked for.
    ApprovalRequested,
    /// An approval was decided.
    ApprovalDecided,
    /// A commit was made.
    Commit,
    /// A task branch was pushed.
    Push,
    /// A pull request was opened.
    PrOpened,
    /// A task branch was merged into the base branch.
    Merged,
    /// The person gave or took back an autonomy grant.
    GrantChanged,
    /// A push was stopped (conflicts with the moved base, or git failed).
    PushBlocked,
    /// Policy judged a command (allow, ask or deny, and why).
    PolicyDecision,
    /// The person's policy file gained rules ("always allow this pattern").
    PolicyUpdated,
    /// The network proxy let a sandboxed command reach a host.
    NetworkAllowed,
    /// The network proxy refused a sandboxed command's connection.
    NetworkRefused,
    /// The secret gate found possible secrets in a diff (masked).
    SecretsFound,
    /// The person marked a secret finding a false positive.
    SecretOverride,
    /// An agent called its model (sizes, reply, tool calls, usage, cost).
    ModelCall,
    /// An agent called one of its tools (arguments and result).
    ToolCall,
    /// A message from an agent to another task or to the person.
    Message,
    /// Older turns of an agent's conversation were summarised to fit.
    ContextSummarised,
    /// An agent said it is done, with its summary.
    AgentFinished,
    /// An external agent was started (which, its version, its program).
    AgentStarted,
    /// A step an external agent reported in its output stream (a message,
    /// a tool call and its result, a command, a file edit).
    AgentStep,
    /// The planner turned a chat message into a backlog of tasks.
    PlanCreated,
    /// A chat message and the answer it got.
    Chat,
    /// A one-time pairing code was issued (the code itself is never logged).
    PairingCreated,
    /// A device redeemed a pairing code and got its token.
    DevicePaired,
    /// A token was revoked.
    TokenRevoked,
    /// Old worktrees were removed and merged branches pruned.
    Gc,
    /// The scanner scanned the repository.
    ScanFinished,
    /// The person dismissed a finding.
    FindingDismissed,
    /// Findings were bundled into a task, with their rationale.
    ProposalCreated,
    /// A browser subscribed to push notifications.
    PushSubscribed,
    /// A browser's push subscription was removed.
    PushUnsubscribed,
    /// The server took changed settings.
    SettingsReloaded,
    /// A repository's warm cache was built (setup and warm-up at a base
    /// commit): its inputs, outputs and digest.
    CacheBuilt,
    /// A task's worktree got a warm cache.
    CacheUsed,
    /// A file a task's checks left was kept as an artifact.
    ArtifactPublished,
    /// A file named as an artifact could not be kept; the payload says why.
    ArtifactRefused,
    /// A repository was registered (cloned, or a local checkout adopted).
    RepoAdded,
    /// A repository was taken off the server.
    RepoRemoved,
    /// A worker host was named and given a one-time enrolment token.
    WorkerAdded,
    /// A worker host traded its enrolment token for its worker token.
    WorkerEnrolled,
    /// A worker host's token was revoked.
    WorkerRevoked,
    /// A task's run was given to a worker host (or this machine).
    TaskPlaced,
    /// A worker host running a task stopped answering; the run is over.
    WorkerLost,
    /// Something went wrong; the payload says what.
    Error,
}

impl EventKind {
    /// The kind's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerStarted => "server_started",
            Self::TaskCreated => "task_created",
            Self::StateChanged => "state_changed",
            Self::BaseFetched => "base_fetched",
            Self::BaseFetchFailed => "base_fetch_failed",
            Self::WorktreeCreated => "worktree_created",
            Self::WorktreeRemoved => "worktree_removed",
            Self::CommandStarted => "command_started",
            Self::Output => "output",
            Self::CommandFinished => "command_finished",
            Self::CheckResult => "check_result",
            Self::Diff => "diff",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalDecided => "approval_decided",
            Self::Commit => "commit",
            Self::Push => "push",
            Self::GrantChanged => "grant_changed",
            Self::PrOpened => "pr_opened",
            Self::Merged => "merged",
            Self::PushBlocked => "push_blocked",
            Self::PolicyDecision => "policy_decision",
            Self::PolicyUpdated => "policy_updated",
            Self::NetworkAllowed => "network_allowed",
            Self::NetworkRefused => "network_refused",
            Self::SecretsFound => "secrets_found",
            Self::SecretOverride => "secret_override",
            Self::ModelCall => "model_call",
            Self::ToolCall => "tool_call",
            Self::Message => "message",
            Self::ContextSummarised => "context_summarised",
            Self::AgentFinished => "agent_finished",
            Self::AgentStarted => "agent_started",
            Self::AgentStep => "agent_step",
            Self::PlanCreated => "plan_created",
            Self::Chat => "chat",
            Self::PairingCreated => "pairing_created",
            Self::DevicePaired => "device_paired",
            Self::TokenRevoked => "token_revoked",
            Self::Gc => "gc",
            Self::ScanFinished => "scan_finished",
            Self::FindingDismissed => "finding_dismissed",
            Self::ProposalCreated => "proposal_created",
            Self::PushSubscribed => "push_subscribed",
            Self::PushUnsubscribed => "push_unsubscribed",
            Self::SettingsReloaded => "settings_reloaded",
            Self::CacheBuilt => "cache_built",
            Self::CacheUsed => "cache_used",
            Self::ArtifactPublished => "artifact_published",
            Self::ArtifactRefused => "artifact_refused",
            Self::RepoAdded => "repo_added",
            Self::RepoRemoved => "repo_removed",
            Self::WorkerAdded => "worker_added",
            Self::WorkerEnrolled => "worker_enrolled",
            Self::WorkerRevoked => "worker_revoked",
            Self::TaskPlaced => "task_placed",
            Self::WorkerLost => "worker_lost",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who did a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, named by their token's name.
    User(String),
    /// The orchestrator itself.
    Orchestrator,
    /// The worker of a task.
    Worker(TaskId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => write!(f, "user:{name}"),
            Self::Orchestrator => f.write_str("orchestrator"),
            Self::Worker(task_id) => write!(f, "worker:{task_id}"),
        }
    }
}

/// An event before it is appended: the store gives it an id, a time and its
/// place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The task it belongs to, if any.
    pub task_id: Option<TaskId>,
    /// Who did it.
    pub actor: Actor,
    /// What kind of step it is.
    pub kind: EventKind,
    /// The details, as JSON.
    pub payload: Value,
}

impl NewEvent {
    /// An event of a task.
    pub fn for_task(task_id: &TaskId, actor: Actor, kind: EventKind, payload: Value) -> Self {
        Self {
            task_id: Some(task_id.clone()),
            actor,
            kind,
            payload,
        }
    }
}

/// An event as stored: every field the hash covers, and the chain links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Position in the log, from 1.
    pub id: EventId,
    /// The task it belongs to, if any.
    pub task_id: Option<String>,
    /// When it was appended (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// Who did it (`user:<name>`, `orchestrator`, `worker:<task>`).
    pub actor: String,
    /// The kind's name.
    pub kind: String,
    /// The details.
    pub payload: Value,
    /// The previous event's hash (or the genesis hash).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this event's canonical encoding.
    pub hash: String,
}
