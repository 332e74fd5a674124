//! Payloads of a task's creation and its agent's steps, and of the
//! server-wide changes around tasks: grants, scans and dismissed findings.

use super::EventPayload;
use crate::event::EventKind;
use crate::work::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `task_created`: a task was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskCreated {
    /// Its title.
    pub title: String,
    /// Its repository (absent in events of a one-repository server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// A command task's line.
    #[serde(default)]
    pub command: Option<String>,
    /// An agent task's brief, as written.
    #[serde(default)]
    pub agent: Value,
    /// Its branch.
    pub branch: String,
    /// The trace its steps are recorded under.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// How its commands are isolated.
    #[serde(default)]
    pub sandbox: Value,
}

impl EventPayload for TaskCreated {
    const KIND: EventKind = EventKind::TaskCreated;
}

/// `tool_call`: the built-in agent called one of its tools.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCalled {
    /// The model's id of the call.
    #[serde(default)]
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// Its arguments as shown (secrets redacted, long ones cut).
    #[serde(default)]
    pub arguments: Value,
    /// Whether the tool reported an error.
    #[serde(default)]
    pub is_error: bool,
    /// What it gave back, cut.
    #[serde(default)]
    pub result: String,
}

impl EventPayload for ToolCalled {
    const KIND: EventKind = EventKind::ToolCall;
}

/// `agent_finished`: an agent said it is done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentFinished {
    /// Its summary of what it did.
    #[serde(default)]
    pub summary: String,
    /// The built-in agent: what its calls used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// An external agent: whether it says it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// An external agent: its session, to continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// An external agent: its turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
}

impl EventPayload for AgentFinished {
    const KIND: EventKind = EventKind::AgentFinished;
}

/// `grant_changed`: the person gave or took back an autonomy grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantChanged {
    /// The grant.
    pub grant: crate::approval::GrantKind,
    /// Given (true) or taken back.
    pub granted: bool,
    /// The repository it is for (absent in older events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

impl EventPayload for GrantChanged {
    const KIND: EventKind = EventKind::GrantChanged;
}

/// `scan_finished`: a scan of a repository ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanFinished {
    /// The repository (absent in older events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The commit scanned.
    pub commit: String,
    /// Only what changed since the last scan was looked at.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental: bool,
    /// An incremental scan: the files changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_files: Option<u64>,
    /// A full scan: what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<u64>,
    /// Findings new since the last scan.
    #[serde(default)]
    pub new: u64,
    /// Findings not found again.
    #[serde(default)]
    pub fixed: u64,
    /// What was not scanned, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl EventPayload for ScanFinished {
    const KIND: EventKind = EventKind::ScanFinished;
}

/// `finding_dismissed`: a person dismissed a finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingDismissed {
    /// The finding.
    pub fingerprint: String,
    /// Why.
    pub reason: String,
    /// Its repository (absent in older events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

impl EventPayload for FindingDismissed {
    const KIND: EventKind = EventKind::FindingDismissed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::json;

    fn event(kind: &str, payload: Value) -> Event {
        super::super::stored(kind, payload)
    }

    #[test]
    fn payloads_written_before_the_types_read_as_them() {
        let built_in = event(
            "agent_finished",
            json!({ "summary": "done", "usage": { "model_calls": 2, "input_tokens": 1,
                     "output_tokens": 1, "cost_micros": 0 } }),
        )
        .read::<AgentFinished>()
        .unwrap();
        assert_eq!(built_in.usage.unwrap().model_calls, 2);
        let external = event(
            "agent_finished",
            json!({ "ok": true, "summary": "x", "session": null, "turns": 3 }),
        )
        .read::<AgentFinished>()
        .unwrap();
        assert_eq!((external.ok, external.turns), (Some(true), Some(3)));
        let older_grant = event(
            "grant_changed",
            json!({ "grant": "auto-push", "granted": true }),
        )
        .read::<GrantChanged>()
        .unwrap();
        assert_eq!(older_grant.repo, None);
        let incremental = event(
            "scan_finished",
            json!({ "repo": "app", "commit": "abc", "incremental": true, "changed_files": 2,
                    "new": 1, "fixed": 0 }),
        )
        .read::<ScanFinished>()
        .unwrap();
        assert!(incremental.incremental);
        // What a full scan writes has the shape it always had.
        let full = ScanFinished {
            repo: Some("app".into()),
            commit: "abc".into(),
            found: Some(3),
            new: 1,
            notes: vec!["n".into()],
            ..ScanFinished::default()
        };
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            json!({ "repo": "app", "commit": "abc", "found": 3, "new": 1, "fixed": 0,
                    "notes": ["n"] })
        );
        let created = event(
            "task_created",
            json!({ "title": "t", "command": "true", "agent": null, "branch": "pushpals/x",
                    "trace_id": "ab", "sandbox": "bubblewrap" }),
        )
        .read::<TaskCreated>()
        .unwrap();
        assert_eq!(created.command.as_deref(), Some("true"));
    }
}
