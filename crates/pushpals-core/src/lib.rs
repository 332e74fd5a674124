//! Domain types of Push Pals, free of I/O.
//!
//! This crate owns what every other crate talks about: task ids and the task
//! [state machine](task::TaskState), [events](event::Event) and the
//! [hash chain](chain) that makes the audit log verifiable, and
//! [approvals](approval::Approval). It does no I/O: persistence lives in
//! `pushpals-store`, git in `pushpals-workspace`, HTTP in `pushpals-server`.

#![forbid(unsafe_code)]

pub mod approval;
pub mod chain;
pub mod event;
pub mod ids;
pub mod payload;
pub mod task;
pub mod timestamp;
pub mod visible;
pub mod work;
pub mod worker_wire;

pub use approval::{Approval, ApprovalAction, ApprovalState, Decision, GrantKind};
pub use event::{Actor, Event, EventKind, NewEvent};
pub use ids::{ApprovalId, EventId, InvalidId, TaskId};
pub use payload::EventPayload;
pub use task::{InvalidTransition, Task, TaskState};
pub use work::{AgentWork, Usage};
