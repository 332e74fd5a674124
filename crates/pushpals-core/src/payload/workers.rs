//! Payloads of the events about worker hosts.

use super::EventPayload;
use crate::event::EventKind;
use serde::{Deserialize, Serialize};

/// `worker_added`: a worker host was named and given a one-time enrolment
/// token (its hash is kept, never the token).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerAdded {
    /// Its name.
    pub name: String,
    /// What it offers (`cargo`, `node`, ...), matched with what tasks need.
    #[serde(default)]
    pub labels: Vec<String>,
    /// When the enrolment token expires (Unix seconds).
    pub expires_at: i64,
}

impl EventPayload for WorkerAdded {
    const KIND: EventKind = EventKind::WorkerAdded;
}

/// `worker_enrolled`: a worker traded its enrolment token for its worker
/// token (the `worker` scope only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerEnrolled {
    /// Its name.
    pub name: String,
    /// Its token's id.
    pub token_id: i64,
    /// Its cores, as it said.
    #[serde(default)]
    pub cores: u32,
    /// Its Push Pals version.
    #[serde(default)]
    pub version: String,
}

impl EventPayload for WorkerEnrolled {
    const KIND: EventKind = EventKind::WorkerEnrolled;
}

/// `worker_revoked`: a worker's token (or its unused enrolment token) was
/// revoked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerRevoked {
    /// Its name.
    pub name: String,
}

impl EventPayload for WorkerRevoked {
    const KIND: EventKind = EventKind::WorkerRevoked;
}

/// `task_placed`: a task's run was given to a worker host, or kept on
/// this machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskPlaced {
    /// The worker's name; `None` for the server's own machine.
    #[serde(default)]
    pub worker: Option<String>,
    /// This run's lease: reports under another lease are refused.
    #[serde(default)]
    pub lease: u64,
    /// The labels the task needs.
    #[serde(default)]
    pub needs: Vec<String>,
    /// How long it waited for a worker, in milliseconds.
    #[serde(default)]
    pub waited_ms: u64,
}

impl EventPayload for TaskPlaced {
    const KIND: EventKind = EventKind::TaskPlaced;
}

/// `worker_lost`: the worker running a task stopped answering (or left);
/// the run ends as `interrupted` and the task is offered again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerLost {
    /// The worker's name.
    pub worker: String,
    /// The lease it held.
    pub lease: u64,
    /// Why it counts as lost.
    pub reason: String,
}

impl EventPayload for WorkerLost {
    const KIND: EventKind = EventKind::WorkerLost;
}
