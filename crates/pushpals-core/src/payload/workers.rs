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
