//! What a task did, in words, for its commit message and pull request:
//! its agent's own summary of the last run, or every command line its runs
//! ran (a continued task ran more than one).

use pushpals_core::payload::{AgentFinished, CommandFinished, CommandStarted, StateChanged};
use pushpals_core::{Event, Task, TaskState};

/// The agent's summary of its last run, when it gave one.
pub(crate) fn agent_summary(events: &[Event]) -> Option<String> {
    events
        .iter()
        .rev()
        .find_map(Event::read::<AgentFinished>)
        .map(|finished| finished.summary.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The command lines a command task's runs ran, in order, each once (the
/// task's current command when no run started yet).
pub(crate) fn commands_run(task: &Task, events: &[Event]) -> Vec<String> {
    let Some(current) = &task.command else {
        return Vec::new();
    };
    let mut ran: Vec<String> = Vec::new();
    for started in events.iter().filter_map(Event::read::<CommandStarted>) {
        if started.step == "worker" && !ran.contains(&started.command) {
            ran.push(started.command);
        }
    }
    if ran.is_empty() {
        ran.push(current.clone());
    }
    ran
}

/// Whether the last run (since the task was last queued) ran its worker
/// command to the end here: a run on a worker host kept its changes
/// there, so it does not count.
pub(crate) fn worker_finished_in_last_run(events: &[Event]) -> bool {
    let run_start = events
        .iter()
        .rposition(|e| {
            e.read::<StateChanged>()
                .is_some_and(|changed| changed.to == TaskState::Queued)
        })
        .unwrap_or(0);
    let run = &events[run_start..];
    let on_a_worker = run.iter().any(|e| {
        e.read::<pushpals_core::payload::TaskPlaced>()
            .is_some_and(|placed| placed.worker.is_some())
    });
    !on_a_worker
        && run.iter().any(|e| {
            e.read::<CommandFinished>()
                .is_some_and(|finished| finished.step == "worker")
        })
}
