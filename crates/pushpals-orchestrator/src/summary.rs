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
/// command to a successful end: its changes are then in the worktree (a
/// command on a worker host sends them back before its end is taken). A
/// command whose worker was lost, or that could not run, did not.
pub(crate) fn worker_finished_in_last_run(events: &[Event]) -> bool {
    let run_start = events
        .iter()
        .rposition(|e| {
            e.read::<StateChanged>()
                .is_some_and(|changed| changed.to == TaskState::Queued)
        })
        .unwrap_or(0);
    events[run_start..].iter().any(|e| {
        e.read::<CommandFinished>().is_some_and(|finished| {
            finished.step == "worker" && finished.error.is_none() && finished.exit_code == Some(0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, payload: serde_json::Value) -> Event {
        Event {
            id: 1,
            task_id: Some("t1".into()),
            time: String::new(),
            actor: "orchestrator".into(),
            kind: kind.into(),
            payload,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn queued() -> Event {
        event(
            "state_changed",
            json!({ "from": "interrupted", "to": "queued", "detail": null, "reason": null }),
        )
    }

    fn worker_ended(payload: serde_json::Value) -> Event {
        let mut payload = payload;
        payload["step"] = json!("worker");
        event("command_finished", payload)
    }

    #[test]
    fn only_a_command_that_ended_well_in_the_last_run_counts() {
        let ran = worker_ended(json!({ "exit_code": 0 }));
        assert!(worker_finished_in_last_run(&[queued(), ran.clone()]));
        // Before the run was queued again: another run's.
        assert!(!worker_finished_in_last_run(&[ran, queued()]));
        // Its worker was lost, or it failed: its changes are not here.
        let lost = worker_ended(json!({ "error": "on the worker host: worker w1 left" }));
        assert!(!worker_finished_in_last_run(&[queued(), lost]));
        let failed = worker_ended(json!({ "exit_code": 1 }));
        assert!(!worker_finished_in_last_run(&[queued(), failed]));
    }
}
