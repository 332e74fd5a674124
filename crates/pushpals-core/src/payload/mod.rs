//! Typed event payloads: one type per kind, used by the writer and by every
//! reader (the server's metrics and notifications, chat status, the CLI),
//! so a field is named once. Every kind has its type ([`payload_type`] is
//! an exhaustive match, so a new kind does not build without one); the
//! types of the task's core steps are here, the others in the modules by
//! concern. A kind this build does not know (written by a newer version),
//! or a payload that does not read as its type, is kept and shown as it is,
//! never an error: [`Event::read`] is `None` for it.
//!
//! Over 400 lines: one type per kind of the task's core steps is one
//! concern, and each kind's reading of older payloads is tested beside it.

use crate::approval::{ApprovalAction, ApprovalState};
use crate::event::{Actor, Event, EventKind, NewEvent};
use crate::ids::{ApprovalId, TaskId};
use crate::task::TaskState;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

mod delivery;
mod kinds;
mod model_call;
mod review;
mod server_events;
mod task_steps;
mod work_events;
mod workers;

pub use delivery::{MergeDone, PrOpened, PushBlocked, Pushed};
pub use kinds::payload_type;
pub use model_call::{CalledTool, ModelCall};
pub use review::{
    ArtifactPublished, ArtifactRefused, DiffFileCount, DiffRecorded, ProposalCreated,
    SecretOverride,
};
pub use server_events::{
    ChatExchanged, Collected, DevicePaired, PairingCreated, PlanCreated, PlanTask, PlannedTask,
    PolicyUpdated, PushSubscribed, PushUnsubscribed, ServerStarted, SettingsReloaded, TokenRevoked,
};
pub use task_steps::{
    AgentStarted, AgentStep, CacheBuilt, CacheUsed, ContextSummarised, Failure, MessageSent,
    NetworkAllowed, NetworkReach, NetworkRefused, OutputWritten, SecretsFound, WarmCheck,
    WorktreeCreated, WorktreeRemoved,
};
pub use work_events::{
    AgentFinished, FindingDismissed, GrantChanged, ScanFinished, TaskCreated, ToolCalled,
};
pub use workers::{TaskPlaced, WorkerAdded, WorkerEnrolled, WorkerLost, WorkerRevoked};

/// A payload type, and the kind of event it is the payload of.
pub trait EventPayload: Serialize + DeserializeOwned {
    /// Its kind.
    const KIND: EventKind;
}

impl Event {
    /// The payload as `T`, when the event is of `T`'s kind and its payload
    /// reads as one.
    pub fn read<T: EventPayload>(&self) -> Option<T> {
        // Read in place: no copy of the payload, also for the kinds that
        // do not match (most events, on the metrics' path).
        (self.kind == T::KIND.as_str())
            .then(|| T::deserialize(&self.payload).ok())
            .flatten()
    }
}

impl NewEvent {
    /// An event whose kind is the payload's.
    pub fn typed<T: EventPayload>(
        task_id: Option<&TaskId>,
        actor: Actor,
        payload: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            task_id: task_id.cloned(),
            actor,
            kind: T::KIND,
            payload: serde_json::to_value(payload)?,
        })
    }
}

/// Reads a payload of `T`'s kind from JSON as a client sees an event
/// (`{"kind": ..., "payload": ...}`).
pub fn read_json<T: EventPayload>(event: &Value) -> Option<T> {
    (event["kind"] == T::KIND.as_str())
        .then(|| T::deserialize(&event["payload"]).ok())
        .flatten()
}

/// `state_changed`: a task moved between states.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateChanged {
    /// Its state before.
    pub from: TaskState,
    /// Its state now.
    pub to: TaskState,
    /// Why, when it ended or stopped.
    #[serde(default)]
    pub reason: Option<String>,
    /// What else the mover said (who approved, what it waits for).
    #[serde(default)]
    pub detail: Value,
}

impl EventPayload for StateChanged {
    const KIND: EventKind = EventKind::StateChanged;
}

/// `approval_requested`: something waits for the person.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalRequested {
    /// The approval.
    pub approval_id: ApprovalId,
    /// What approving does.
    pub action: ApprovalAction,
    /// In a line.
    pub summary: String,
    /// What the person decides on (the command, the diff's summary).
    #[serde(default)]
    pub detail: Value,
    /// Why it is asked again, when what an earlier approval allowed could
    /// not be done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub again_after: Option<String>,
}

impl EventPayload for ApprovalRequested {
    const KIND: EventKind = EventKind::ApprovalRequested;
}

/// `approval_decided`: the person (or a grant) answered, or the approval
/// was withdrawn.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalDecided {
    /// The approval.
    pub approval_id: ApprovalId,
    /// What it was for.
    pub action: ApprovalAction,
    /// Where it stands now.
    pub decision: ApprovalState,
    /// Who decided.
    pub decided_by: String,
    /// Why, when they said.
    #[serde(default)]
    pub reason: Option<String>,
}

impl EventPayload for ApprovalDecided {
    const KIND: EventKind = EventKind::ApprovalDecided;
}

/// `command_started`: a command of a task (or a scan) started.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandStarted {
    /// The step it is (`worker`, `check:test`, `agent:3`, ...).
    pub step: String,
    /// Its command line.
    pub command: String,
    /// The sandbox backend it runs under.
    pub backend: String,
    /// Its time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Said when it runs without isolation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl EventPayload for CommandStarted {
    const KIND: EventKind = EventKind::CommandStarted;
}

/// `command_finished`: a command ended, or could not run (`error`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandFinished {
    /// The step it was.
    pub step: String,
    /// How it ended, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why it could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// It ran out of time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// It was cancelled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// How long it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// How many bytes of output it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// More than was kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_truncated: bool,
    /// The blob holding its (redacted) output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_blob: Option<String>,
}

impl EventPayload for CommandFinished {
    const KIND: EventKind = EventKind::CommandFinished;
}

/// `check_result`: one of the repository's checks ran on a task.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckResult {
    /// Its name (`build`, `lint`, `test`, ...).
    pub check: String,
    /// Its command line.
    pub command: String,
    /// Whether it passed.
    pub passed: bool,
}

impl EventPayload for CheckResult {
    const KIND: EventKind = EventKind::CheckResult;
}

/// `commit`: a task's change was committed on its branch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Commit {
    /// The commit.
    pub sha: String,
    /// The task's branch.
    pub branch: String,
    /// Its message.
    pub message: String,
    /// True when a restart found the commit a stop cut short and recorded
    /// it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

impl EventPayload for Commit {
    const KIND: EventKind = EventKind::Commit;
}

/// `base_fetched`: the base branch was fetched before a task started.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaseFetched {
    /// The remote.
    pub remote: String,
    /// Its base branch.
    pub branch: String,
    /// The commit the branch pointed at.
    pub fetched: String,
    /// The local HEAD then.
    pub head: String,
    /// The commit the task starts from.
    pub start_commit: String,
    /// Why that one.
    pub why: String,
}

impl EventPayload for BaseFetched {
    const KIND: EventKind = EventKind::BaseFetched;
}

/// `base_fetch_failed`: fetching the base before a task failed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaseFetchFailed {
    /// The remote.
    pub remote: String,
    /// Its base branch.
    pub branch: String,
    /// What git said, without credentials.
    pub error: String,
    /// When the task tries again, if it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_secs: Option<u64>,
    /// `last_fetched` when the task starts anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The commit it starts from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_commit: Option<String>,
    /// Why that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl EventPayload for BaseFetchFailed {
    const KIND: EventKind = EventKind::BaseFetchFailed;
}

/// `policy_decision`: policy judged a step (a command line, an agent's
/// file write, a model call through the gateway), or a command was
/// approved with its task.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyDecision {
    /// The step (`worker`, `check:test`, `setup`, `agent:tool`, `gateway`).
    pub step: String,
    /// The command line judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `allow`, `ask` or `deny`; absent when the command was approved
    /// with its task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Each part of the line and how it was judged.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub findings: Value,
    /// Why, for a decision with one reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An `ask` the person already approved for the task.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub granted_for_task: bool,
    /// The step needs the network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
    /// The command was approved as the task was created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preapproved: bool,
    /// The agent tool that wrote, and the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The file an agent's tool wrote.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub file: Value,
    /// A model call's protocol (at the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl EventPayload for PolicyDecision {
    const KIND: EventKind = EventKind::PolicyDecision;
}

/// `repo_added`: a repository was registered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RepoAdded {
    /// Its name on this server.
    pub repo: String,
    /// Where its checkout is.
    pub path: String,
    /// The URL it was cloned from, without credentials; `None` for a local
    /// checkout used in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Its base branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// How many earlier tasks, grants and findings it took over (rows from
    /// before the server held several repositories).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adopted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EventPayload for RepoAdded {
    const KIND: EventKind = EventKind::RepoAdded;
}

/// `repo_removed`: a repository was taken off the server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RepoRemoved {
    /// Its name.
    pub repo: String,
    /// Whether its clone in the data directory was deleted (a local
    /// checkout is never deleted).
    pub deleted_clone: bool,
}

impl EventPayload for RepoRemoved {
    const KIND: EventKind = EventKind::RepoRemoved;
}

/// An event as the store gives it back, for the payload types' tests.
#[cfg(test)]
pub(crate) fn stored(kind: &str, payload: Value) -> Event {
    Event {
        id: 1,
        task_id: None,
        time: "2026-12-07T00:00:00.000Z".into(),
        actor: "orchestrator".into(),
        kind: kind.into(),
        payload,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_reads_back_as_written_and_only_as_its_kind() {
        let changed = StateChanged {
            from: TaskState::Running,
            to: TaskState::Failed,
            reason: Some("boom".into()),
            detail: Value::Null,
        };
        let new = NewEvent::typed(None, Actor::Orchestrator, &changed).unwrap();
        assert_eq!(new.kind, EventKind::StateChanged);
        // The same JSON the untyped writers made, so old readers agree.
        assert_eq!(
            new.payload,
            json!({ "from": "running", "to": "failed", "reason": "boom", "detail": null })
        );
        let event = stored("state_changed", new.payload);
        assert_eq!(event.read::<StateChanged>(), Some(changed));
        assert_eq!(event.read::<ApprovalDecided>(), None);
    }

    #[test]
    fn a_commit_says_recovered_only_when_it_was() {
        let commit = Commit {
            sha: "abc".into(),
            branch: "pushpals/t1".into(),
            message: "m".into(),
            recovered: false,
        };
        let plain = NewEvent::typed(None, Actor::Orchestrator, &commit).unwrap();
        assert_eq!(
            plain.payload,
            json!({ "sha": "abc", "branch": "pushpals/t1", "message": "m" })
        );
        let recovered = Commit {
            recovered: true,
            ..commit
        };
        let again = NewEvent::typed(None, Actor::Orchestrator, &recovered).unwrap();
        assert_eq!(again.payload["recovered"], true);
        assert_eq!(
            stored("commit", again.payload).read::<Commit>(),
            Some(recovered)
        );
    }

    #[test]
    fn unknown_kinds_and_odd_payloads_are_kept_not_failed() {
        let newer = stored("something_from_the_future", json!({ "x": 1 }));
        assert_eq!(newer.read::<StateChanged>(), None);
        assert_eq!(newer.payload["x"], 1);
        let odd = stored("state_changed", json!({ "to": "nowhere" }));
        assert_eq!(odd.read::<StateChanged>(), None);
        let seen = json!({ "kind": "approval_decided", "payload": {
            "approval_id": 3, "action": "commit", "decision": "denied", "decided_by": "phone" } });
        let decided = read_json::<ApprovalDecided>(&seen).unwrap();
        assert_eq!(
            (decided.decision, decided.reason),
            (ApprovalState::Denied, None)
        );
    }

    #[test]
    fn policy_decisions_written_before_the_type_read_and_false_flags_are_left_out() {
        let older = stored(
            "policy_decision",
            json!({ "step": "worker", "command": "make", "decision": "ask",
                    "findings": [{ "part": "make", "decision": "ask" }],
                    "granted_for_task": false, "network": false }),
        );
        let judged = older.read::<PolicyDecision>().unwrap();
        assert_eq!(judged.decision.as_deref(), Some("ask"));
        assert_eq!(judged.findings[0]["part"], "make");
        assert!(!judged.granted_for_task && !judged.preapproved);
        let written = NewEvent::typed(
            None,
            Actor::Orchestrator,
            &PolicyDecision {
                step: "worker".into(),
                command: Some("make".into()),
                preapproved: true,
                ..PolicyDecision::default()
            },
        )
        .unwrap();
        assert_eq!(
            written.payload,
            json!({ "step": "worker", "command": "make", "preapproved": true })
        );
        let gateway = stored(
            "policy_decision",
            json!({ "step": "gateway", "decision": "deny", "reason": "over budget", "protocol": "openai" }),
        );
        let refused = gateway.read::<PolicyDecision>().unwrap();
        assert_eq!(refused.reason.as_deref(), Some("over budget"));
        assert_eq!(refused.protocol.as_deref(), Some("openai"));
    }
}
