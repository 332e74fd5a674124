//! What a task did, in words, for its commit message and pull request:
//! its agent's own summary of the last run, or every command line its runs
//! ran (a continued task ran more than one).

use pushpals_core::{Event, EventKind, Task};

/// The agent's summary of its last run, when it gave one.
pub(crate) fn agent_summary(events: &[Event]) -> Option<&str> {
    events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::AgentFinished.as_str())
        .and_then(|e| e.payload["summary"].as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The command lines a command task's runs ran, in order, each once (the
/// task's current command when no run started yet).
pub(crate) fn commands_run(task: &Task, events: &[Event]) -> Vec<String> {
    let Some(current) = &task.command else {
        return Vec::new();
    };
    let mut ran: Vec<String> = Vec::new();
    for event in events {
        if event.kind == EventKind::CommandStarted.as_str()
            && event.payload["step"] == "worker"
            && let Some(command) = event.payload["command"].as_str()
            && !ran.iter().any(|r| r == command)
        {
            ran.push(command.to_owned());
        }
    }
    if ran.is_empty() {
        ran.push(current.clone());
    }
    ran
}

/// Whether the last run (since the task was last queued) ran its worker
/// command to the end.
pub(crate) fn worker_finished_in_last_run(events: &[Event]) -> bool {
    let run_start = events
        .iter()
        .rposition(|e| e.kind == EventKind::StateChanged.as_str() && e.payload["to"] == "queued")
        .unwrap_or(0);
    events[run_start..]
        .iter()
        .any(|e| e.kind == EventKind::CommandFinished.as_str() && e.payload["step"] == "worker")
}
