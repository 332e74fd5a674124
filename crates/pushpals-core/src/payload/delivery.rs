//! Payloads of the delivery steps: a push, a pull request opened, a local
//! merge, and a push that was stopped.

use super::EventPayload;
use crate::event::EventKind;
use serde::{Deserialize, Serialize};

/// `push`: a task branch was pushed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    /// The remote it went to.
    pub remote: String,
    /// The task branch.
    pub branch: String,
    /// The commit pushed.
    pub sha: String,
    /// The remote base it was rebased onto first, when the base moved.
    #[serde(default)]
    pub rebased_onto: Option<String>,
    /// The open pull request this push updated, by its address.
    #[serde(default)]
    pub updates_pull_request: Option<String>,
}

impl EventPayload for Pushed {
    const KIND: EventKind = EventKind::Push;
}

/// `pr_opened`: a pull request was opened on the forge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrOpened {
    /// The forge (`github`).
    pub forge: String,
    /// Its address.
    pub url: String,
    /// Its number on the forge.
    pub number: u64,
}

impl EventPayload for PrOpened {
    const KIND: EventKind = EventKind::PrOpened;
}

/// `merged`: a task branch was merged into the base branch locally.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeDone {
    /// The branch merged into.
    pub base_branch: String,
    /// The base branch's new head.
    pub head: String,
    /// `fast-forward` or `merge commit`.
    pub kind: String,
}

impl EventPayload for MergeDone {
    const KIND: EventKind = EventKind::Merged;
}

/// `push_blocked`: a push was stopped (the moved base conflicts, git
/// failed), and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushBlocked {
    /// Why, in words that say what to do.
    pub reason: String,
}

impl EventPayload for PushBlocked {
    const KIND: EventKind = EventKind::PushBlocked;
}
