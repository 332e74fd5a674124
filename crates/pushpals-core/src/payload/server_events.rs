//! Payloads of what happens around the tasks: the server starting and
//! reloading, clean-ups, the person's policy file, devices and tokens, push
//! subscriptions, chat and plans.

use super::EventPayload;
use crate::event::EventKind;
use serde::{Deserialize, Serialize};

/// `server_started`: the orchestrator started serving.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStarted {
    /// The repositories it serves.
    #[serde(default)]
    pub repos: Vec<String>,
    /// The address it listens on.
    #[serde(default)]
    pub addr: String,
    /// How commands are isolated.
    #[serde(default)]
    pub runner_backend: String,
    /// Its version.
    #[serde(default)]
    pub version: String,
}

impl EventPayload for ServerStarted {
    const KIND: EventKind = EventKind::ServerStarted;
}

/// `settings_reloaded`: `config.toml` was read again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsReloaded {
    /// Sections whose new values are in force.
    #[serde(default)]
    pub applied: Vec<String>,
    /// Sections that changed but need a restart.
    #[serde(default)]
    pub restart_needed: Vec<String>,
}

impl EventPayload for SettingsReloaded {
    const KIND: EventKind = EventKind::SettingsReloaded;
}

/// `gc`: old worktrees, merged branches and stale caches were removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    /// The tasks whose worktrees were removed.
    #[serde(default)]
    pub worktrees: Vec<String>,
    /// The branches deleted.
    #[serde(default)]
    pub branches: Vec<String>,
    /// The warm caches removed.
    #[serde(default)]
    pub caches: Vec<String>,
    /// Space freed.
    #[serde(default)]
    pub bytes_freed: u64,
}

impl EventPayload for Collected {
    const KIND: EventKind = EventKind::Gc;
}

/// `policy_updated`: the person's policy file gained rules ("always allow
/// this pattern").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyUpdated {
    /// The file.
    pub file: String,
    /// The rules added, as TOML.
    pub added_rules: String,
}

impl EventPayload for PolicyUpdated {
    const KIND: EventKind = EventKind::PolicyUpdated;
}

/// `pairing_created`: a one-time pairing code was issued (never the code).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairingCreated {
    /// The scope the paired device gets.
    pub scope: String,
    /// When the code expires (Unix seconds).
    pub expires_at: i64,
}

impl EventPayload for PairingCreated {
    const KIND: EventKind = EventKind::PairingCreated;
}

/// `device_paired`: a device redeemed a pairing code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DevicePaired {
    /// Its name.
    pub device: String,
    /// Its token's id.
    pub token_id: i64,
    /// Its token's scopes, as stored (space-separated).
    #[serde(default)]
    pub scopes: String,
}

impl EventPayload for DevicePaired {
    const KIND: EventKind = EventKind::DevicePaired;
}

/// `token_revoked`: a token was revoked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenRevoked {
    /// Its id.
    pub token_id: i64,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

impl EventPayload for TokenRevoked {
    const KIND: EventKind = EventKind::TokenRevoked;
}

/// `push_subscribed`: a device subscribed to Web Push notices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushSubscribed {
    /// The device's token name.
    pub token_name: String,
    /// The push service's host (the endpoint itself is a capability and
    /// is never logged).
    pub push_service: String,
}

impl EventPayload for PushSubscribed {
    const KIND: EventKind = EventKind::PushSubscribed;
}

/// `push_unsubscribed`: a subscription ended: the person turned notices
/// off, or the push service said it is gone (`reason`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushUnsubscribed {
    /// The device's token name.
    pub token_name: String,
    /// The push service's host.
    pub push_service: String,
    /// Why the orchestrator dropped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl EventPayload for PushUnsubscribed {
    const KIND: EventKind = EventKind::PushUnsubscribed;
}

/// `chat`: a chat message and the answer it got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatExchanged {
    /// The message, secrets redacted.
    pub message: String,
    /// What it was understood as (`status`, `approve`, `new_work`, ...).
    #[serde(default)]
    pub intent: String,
    /// The answer.
    #[serde(default)]
    pub reply: String,
    /// The plan it started, if any.
    #[serde(default)]
    pub plan_id: Option<String>,
}

impl EventPayload for ChatExchanged {
    const KIND: EventKind = EventKind::Chat;
}

/// `plan_created`: the planner's plan, held for an OK (`awaiting_ok`,
/// `planned`), started (`tasks`), or decided (`decision`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanCreated {
    /// The plan.
    pub plan_id: String,
    /// What it does, in a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Held until the person says OK.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_ok: bool,
    /// The tasks it would create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedTask>,
    /// The tasks it created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<PlanTask>,
    /// `started` or `discarded`, for a held plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

impl EventPayload for PlanCreated {
    const KIND: EventKind = EventKind::PlanCreated;
}

/// A task a plan would create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannedTask {
    /// Its key in the plan.
    pub key: String,
    /// Its title.
    pub title: String,
    /// The keys of the tasks it waits for.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// A task a plan created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanTask {
    /// Its key in the plan.
    #[serde(default)]
    pub key: String,
    /// Its id.
    pub task_id: String,
    /// Its number.
    pub seq: u64,
    /// Its title.
    pub title: String,
    /// The keys of the tasks it waits for.
    #[serde(default)]
    pub depends_on: Vec<String>,
}
