//! What the agent loop needs from whoever runs it (the orchestrator): a
//! place to record events, a gate for commands, and a message bus. The
//! agent itself touches neither git nor the store.

use pushpals_core::{EventKind, Usage};
use serde_json::Value;
use std::future::Future;

/// How a command the agent asked for ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It ran; `summary` says how it ended (`exit code 1`, `timed out`).
    Ran {
        /// Its exit code, when it exited.
        exit_code: Option<i32>,
        /// How it ended, in words.
        summary: String,
        /// Its output (already redacted), possibly cut.
        output: String,
    },
    /// Policy or the person refused it; the reason goes back to the model.
    Refused(String),
}

/// Why the host cannot go on with the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The task was cancelled.
    #[error("the task was cancelled")]
    Cancelled,
    /// Recording or running failed.
    #[error("{0}")]
    Failed(String),
}

/// The orchestrator's side of an agent run.
pub trait AgentHost: Send + Sync {
    /// Records an event of the task.
    fn record(
        &self,
        kind: EventKind,
        detail: Value,
    ) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Records a model call (its event, and its usage in the task's sums).
    fn record_model_call(
        &self,
        call: pushpals_core::payload::ModelCall,
        usage: Usage,
    ) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Runs a command through policy and the sandbox; an `ask` waits for
    /// the person.
    fn run_command(
        &self,
        command_line: &str,
    ) -> impl Future<Output = Result<CommandOutcome, HostError>> + Send;

    /// Delivers a message to another task (by id) or to the person
    /// (`person`); says where it went.
    fn send_message(
        &self,
        to: &str,
        text: &str,
    ) -> impl Future<Output = Result<String, String>> + Send;

    /// Messages for this task that arrived since the last call.
    fn inbox(&self) -> Vec<String>;

    /// Masks what looks like a secret, before text is stored or sent to a
    /// model.
    fn redact(&self, text: &str) -> String;
}
