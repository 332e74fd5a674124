//! Payloads of what a person reviews: a task's diff, secrets marked false
//! positives, the artifacts its checks published, and the proposal a task
//! was made from.

use super::EventPayload;
use crate::event::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One file of a diff, counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffFileCount {
    /// The file.
    pub path: String,
    /// Lines added (`None` for a binary file).
    #[serde(default)]
    pub added: Option<u64>,
    /// Lines removed (`None` for a binary file).
    #[serde(default)]
    pub removed: Option<u64>,
}

/// `diff`: a task's diff against its base, with secrets redacted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffRecorded {
    /// The files changed.
    #[serde(default)]
    pub files: Vec<DiffFileCount>,
    /// The blob holding the diff's text.
    pub diff_blob: String,
    /// Its size.
    #[serde(default)]
    pub bytes: u64,
}

impl EventPayload for DiffRecorded {
    const KIND: EventKind = EventKind::Diff;
}

/// `secret_override`: a person marked a secret finding a false positive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretOverride {
    /// The finding.
    pub fingerprint: String,
    /// Its file.
    #[serde(default)]
    pub file: String,
    /// Its line.
    #[serde(default)]
    pub line: u64,
    /// The rule that found it.
    #[serde(default)]
    pub rule: String,
    /// The secret, mostly hidden.
    #[serde(default)]
    pub masked: String,
    /// Why it is no secret.
    #[serde(default)]
    pub reason: String,
}

impl EventPayload for SecretOverride {
    const KIND: EventKind = EventKind::SecretOverride;
}

/// `artifact_published`: a check's output file kept with the task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactPublished {
    /// Its path in the worktree.
    pub path: String,
    /// Its content's SHA-256, by which it is fetched.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// `image`, `html`, `junit`, `coverage`, `text`, ...
    pub kind: String,
    /// What it says in short (test counts, coverage), when it is read.
    #[serde(default)]
    pub summary: Value,
}

impl EventPayload for ArtifactPublished {
    const KIND: EventKind = EventKind::ArtifactPublished;
}

/// `artifact_refused`: a file a check named was not kept, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRefused {
    /// The path named.
    pub path: String,
    /// Why it was not kept.
    pub reason: String,
}

impl EventPayload for ArtifactRefused {
    const KIND: EventKind = EventKind::ArtifactRefused;
}

/// `proposal_created`: the scanner's findings became a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProposalCreated {
    /// The findings' fingerprints.
    pub findings: Vec<String>,
    /// Why fixing them matters.
    #[serde(default)]
    pub rationale: String,
}

impl EventPayload for ProposalCreated {
    const KIND: EventKind = EventKind::ProposalCreated;
}
