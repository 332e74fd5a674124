//! Payloads of a task's steps around its commands: its worktree, its
//! output, its warm cache, the network it reached, the secrets in its diff,
//! its external agent's start and steps, messages, and the error that
//! failed it.

use super::EventPayload;
use crate::event::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `worktree_created`: a task's worktree and branch were made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorktreeCreated {
    /// The commit it starts from.
    pub base_commit: String,
    /// Its branch.
    pub branch: String,
    /// Where it is.
    pub path: String,
}

impl EventPayload for WorktreeCreated {
    const KIND: EventKind = EventKind::WorktreeCreated;
}

/// `worktree_removed`: a task's worktree was removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorktreeRemoved {
    /// Its branch went too (it was merged, or the task ended without one).
    #[serde(default)]
    pub branch_deleted: bool,
}

impl EventPayload for WorktreeRemoved {
    const KIND: EventKind = EventKind::WorktreeRemoved;
}

/// `output`: a chunk of a command's output, secrets redacted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputWritten {
    /// The step whose command wrote it.
    pub step: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text.
    pub text: String,
    /// The rest of the output is only in the command's blob.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continues_in_blob: bool,
}

impl EventPayload for OutputWritten {
    const KIND: EventKind = EventKind::Output;
}

/// `secrets_found`: the secret gate found possible secrets in a diff.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretsFound {
    /// Each finding, masked (fingerprint, file, line, rule, description,
    /// masked).
    pub findings: Vec<Value>,
}

impl EventPayload for SecretsFound {
    const KIND: EventKind = EventKind::SecretsFound;
}

/// `error`: what failed a task or a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The plan it was, when planning failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
}

impl EventPayload for Failure {
    const KIND: EventKind = EventKind::Error;
}

/// `network_allowed` and `network_refused`: the proxy let a sandboxed
/// command reach a host, or refused it, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkReach {
    /// The host asked for.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `network_allowed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkAllowed(pub NetworkReach);

impl EventPayload for NetworkAllowed {
    const KIND: EventKind = EventKind::NetworkAllowed;
}

/// `network_refused`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkRefused(pub NetworkReach);

impl EventPayload for NetworkRefused {
    const KIND: EventKind = EventKind::NetworkRefused;
}

/// `cache_used`: a task started with a warm cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheUsed {
    /// The cache's key.
    pub key: String,
    /// The commit it was built at.
    #[serde(default)]
    pub built_at_commit: String,
    /// Its top-level entries.
    #[serde(default)]
    pub entries: u64,
    /// Its files.
    #[serde(default)]
    pub files: u64,
    /// Its size.
    #[serde(default)]
    pub bytes: u64,
    /// How it was brought in (`overlay`, `reflink`, `copy`, ...).
    #[serde(default)]
    pub method: String,
    /// The lock files the task has, with their digests.
    #[serde(default)]
    pub lock_files: std::collections::BTreeMap<String, String>,
    /// How long bringing it in took.
    #[serde(default)]
    pub took_ms: u64,
}

impl EventPayload for CacheUsed {
    const KIND: EventKind = EventKind::CacheUsed;
}

/// `cache_built`: a warm cache was built for a repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheBuilt {
    /// Its key.
    pub key: String,
    /// The commit it was built at.
    #[serde(default)]
    pub base_commit: String,
    /// What it was built from (lock files and their digests).
    #[serde(default)]
    pub inputs: Value,
    /// Its first top-level entries.
    #[serde(default)]
    pub entries: Vec<String>,
    /// Its files.
    #[serde(default)]
    pub files: u64,
    /// Its size.
    #[serde(default)]
    pub bytes: u64,
    /// Its content's digest.
    #[serde(default)]
    pub sha256: String,
    /// The checks run to warm it, and whether each passed.
    #[serde(default)]
    pub warm_checks: Vec<WarmCheck>,
    /// How long building it took.
    #[serde(default)]
    pub took_ms: u64,
}

impl EventPayload for CacheBuilt {
    const KIND: EventKind = EventKind::CacheBuilt;
}

/// A check run to warm a cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmCheck {
    /// The check.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
}

/// `agent_started`: an external agent was started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStarted {
    /// Which agent.
    pub agent: String,
    /// Its version line.
    #[serde(default)]
    pub version: Option<String>,
    /// Its program.
    #[serde(default)]
    pub program: String,
    /// The named model it reaches through the gateway.
    #[serde(default)]
    pub model: String,
    /// The protocol it speaks.
    #[serde(default)]
    pub protocol: String,
    /// The model's protocol, when the gateway translates.
    #[serde(default)]
    pub translated_to: Option<String>,
    /// The session it continues.
    #[serde(default)]
    pub resumed_session: Option<String>,
    /// Its actions are judged by Push Pals' hook.
    #[serde(default)]
    pub judged_by_hook: bool,
    /// The session protocol it is driven over (`acp`).
    #[serde(default)]
    pub session_protocol: Option<String>,
    /// The worker host it runs on (absent: the server's machine). Its
    /// session stays there, so a later run does not resume it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl EventPayload for AgentStarted {
    const KIND: EventKind = EventKind::AgentStarted;
}

/// `agent_step`: a step an external agent reported (`init`, `message`,
/// `tool_call`, `tool_result`), or `stopped` when Push Pals stopped it;
/// the fields of the other steps are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStep {
    /// Which step.
    pub step: String,
    /// `init`: its session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// `init`: its model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `message`: what it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `tool_call`, `tool_result`: the call's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// `tool_call`: the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `tool_call`: its input, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// `tool_call`: the file it touches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `tool_call`: the command it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `tool_result`: what came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// `tool_result`: whether it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// `stopped`: why Push Pals stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AgentStep {
    /// A step of this name, its other fields empty.
    pub fn named(step: &str) -> Self {
        Self {
            step: step.to_owned(),
            ..Self::default()
        }
    }
}

impl EventPayload for AgentStep {
    const KIND: EventKind = EventKind::AgentStep;
}

/// `message`: an agent wrote to another task or to the person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageSent {
    /// A task id, or `person`.
    pub to: String,
    /// What it said.
    pub text: String,
}

impl EventPayload for MessageSent {
    const KIND: EventKind = EventKind::Message;
}

/// `context_summarised`: older turns of an agent's conversation were
/// summarised to fit its model's context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextSummarised {
    /// Turns replaced by the summary.
    pub turns_replaced: u64,
    /// Turns kept after it.
    pub turns_kept: u64,
}

impl EventPayload for ContextSummarised {
    const KIND: EventKind = EventKind::ContextSummarised;
}
