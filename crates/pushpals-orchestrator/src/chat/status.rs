//! How each task stands, from the orchestrator's state alone: its phase,
//! last step, checks and cost. Nothing here waits for a worker.

use crate::orchestrator::Orchestrator;
use pushpals_core::payload::{
    ApprovalDecided, ApprovalRequested, BaseFetchFailed, BaseFetched, CheckResult, CommandFinished,
    CommandStarted, Commit,
};
use pushpals_core::{Event, TaskId, Usage};
use pushpals_store::{StoreResult, TaskOverview};
use serde::Serialize;

/// Event kinds that count as a task's steps.
const STEP_KINDS: &[&str] = &[
    "tool_call",
    "command_started",
    "command_finished",
    "check_result",
    "model_call",
    "agent_finished",
    "approval_requested",
    "approval_decided",
    "commit",
    "worktree_created",
    "base_fetched",
    "base_fetch_failed",
];
/// How many check results are looked at (enough for build, lint, test
/// of the last run or two).
const CHECKS: u32 = 6;

/// One check's latest result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    /// `build`, `lint` or `test`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
}

/// One task, as chat and status show it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    /// Its id.
    pub id: TaskId,
    /// Its number.
    pub seq: u64,
    /// Its title.
    pub title: String,
    /// Its state.
    pub state: String,
    /// Its last step, in words.
    pub last_step: Option<String>,
    /// Its checks' latest results.
    pub checks: Vec<CheckStatus>,
    /// Its model usage.
    pub usage: Usage,
    /// Why it failed or was stopped.
    pub reason: Option<String>,
    /// Tasks it waits for.
    pub depends_on: Vec<TaskId>,
    /// Seconds since it entered its state, while it is at work.
    pub at_work_secs: Option<u64>,
    /// The latest line of its output, while it is at work.
    pub last_line: Option<String>,
    /// The worker host running it, while one does.
    pub worker: Option<String>,
    /// What it waits for a worker host to offer, while it waits for one.
    pub waiting_for_worker: Option<Vec<String>>,
    /// All of it in one line, for people.
    pub summary: String,
}

impl TaskStatus {
    /// One line for people.
    pub fn line(&self) -> String {
        let mut line = format!("#{} {} [{}] {}", self.seq, self.id, self.state, self.title);
        if let Some(seconds) = self.at_work_secs {
            line.push_str(&format!(
                " for {}",
                pushpals_core::timestamp::duration_words(seconds)
            ));
        }
        if let Some(worker) = &self.worker {
            line.push_str(&format!(" on worker {worker}"));
        }
        if let Some(needs) = &self.waiting_for_worker {
            if needs.is_empty() {
                line.push_str("; waiting for a worker");
            } else {
                line.push_str(&format!("; waiting for a worker with {}", needs.join(", ")));
            }
        }
        if let Some(step) = &self.last_step {
            line.push_str(&format!("; last step: {step}"));
        }
        if !self.checks.is_empty() {
            let checks: Vec<String> = self
                .checks
                .iter()
                .map(|c| format!("{} {}", c.name, if c.passed { "passed" } else { "failed" }))
                .collect();
            line.push_str(&format!("; checks: {}", checks.join(", ")));
        }
        if self.usage.model_calls > 0 {
            line.push_str(&format!(
                "; {} model calls, {} tokens, ${:.4}",
                self.usage.model_calls,
                self.usage.tokens(),
                self.usage.cost_usd()
            ));
        }
        if !self.depends_on.is_empty() && self.state == "queued" {
            let ids: Vec<&str> = self.depends_on.iter().map(TaskId::as_str).collect();
            line.push_str(&format!("; waits for {}", ids.join(", ")));
        }
        if let Some(reason) = &self.reason {
            let first = reason.lines().next().unwrap_or_default();
            line.push_str(&format!("; reason: {first}"));
        }
        if let Some(last) = &self.last_line {
            line.push_str(&format!("; latest output: {last}"));
        }
        line
    }
}

/// The last non-blank line of an output chunk, at most 160 characters.
fn last_line(text: &str) -> Option<String> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    let mut shown: String = line.chars().take(160).collect();
    if shown.len() < line.len() {
        shown.push('…');
    }
    Some(shown)
}

fn describe(event: &Event) -> String {
    if let Some(asked) = event.read::<ApprovalRequested>() {
        return format!("waiting for approval: {}", asked.summary);
    }
    if let Some(decided) = event.read::<ApprovalDecided>() {
        return format!("{} {}", decided.action.as_str(), decided.decision.as_str());
    }
    if let Some(started) = event.read::<CommandStarted>() {
        return format!("running `{}`", started.command);
    }
    if let Some(finished) = event.read::<CommandFinished>() {
        let how = finished.outcome.or(finished.error).unwrap_or_default();
        return format!("{} {how}", finished.step);
    }
    if let Some(check) = event.read::<CheckResult>() {
        let verdict = if check.passed { "passed" } else { "failed" };
        return format!("check {} {verdict}", check.check);
    }
    if let Some(commit) = event.read::<Commit>() {
        return format!("committed {}", commit.sha.get(..12).unwrap_or_default());
    }
    if let Some(fetched) = event.read::<BaseFetched>() {
        return format!(
            "starts from {} ({})",
            fetched.start_commit.get(..12).unwrap_or_default(),
            fetched.why
        );
    }
    if let Some(failed) = event.read::<BaseFetchFailed>() {
        return format!(
            "cannot fetch {}/{}: {}",
            failed.remote, failed.branch, failed.error
        );
    }
    match event.kind.as_str() {
        "tool_call" => format!(
            "tool {}",
            event
                .read::<pushpals_core::payload::ToolCalled>()
                .map(|called| called.tool)
                .unwrap_or_default()
        ),
        "model_call" => {
            let call = event.read::<pushpals_core::payload::ModelCall>();
            let why = call
                .and_then(|c| c.purpose.or(c.via.map(|via| format!("via the {via}"))))
                .unwrap_or_default();
            format!("asked the model ({why})")
        }
        "agent_finished" => "the agent finished".to_owned(),
        "worktree_created" => "worktree ready".to_owned(),
        other => other.to_owned(),
    }
}

impl TaskStatus {
    /// Builds a task's status from its overview.
    fn from_overview(overview: TaskOverview) -> Self {
        let TaskOverview {
            task,
            last_step,
            checks: results,
        } = overview;
        let mut checks: Vec<CheckStatus> = Vec::new();
        for result in results.iter().filter_map(Event::read::<CheckResult>) {
            if !checks.iter().any(|c| c.name == result.check) {
                checks.push(CheckStatus {
                    name: result.check,
                    passed: result.passed,
                });
            }
        }
        checks.reverse();
        let mut status = Self {
            last_step: last_step.as_ref().map(describe),
            checks,
            usage: task.usage,
            reason: task.reason,
            depends_on: task.agent.map(|w| w.depends_on).unwrap_or_default(),
            at_work_secs: task.state.is_active().then(|| {
                pushpals_core::timestamp::parse(&task.updated_at)
                    .map(|since| {
                        (time::OffsetDateTime::now_utc() - since)
                            .whole_seconds()
                            .max(0) as u64
                    })
                    .unwrap_or(0)
            }),
            last_line: None,
            worker: None,
            waiting_for_worker: None,
            id: task.id,
            seq: task.seq,
            title: task.title,
            state: task.state.to_string(),
            summary: String::new(),
        };
        status.summary = status.line();
        status
    }
}

impl Orchestrator {
    /// The status of every task, oldest first, in one read.
    pub async fn status(&self) -> StoreResult<Vec<TaskStatus>> {
        let mut statuses: Vec<TaskStatus> = self
            .store
            .task_overview(STEP_KINDS, "check_result", CHECKS)
            .await?
            .into_iter()
            .map(TaskStatus::from_overview)
            .collect();
        // Tasks at work show their latest output line (a long build says
        // what it is doing, not only "checking").
        for status in statuses.iter_mut().filter(|s| s.at_work_secs.is_some()) {
            status.worker = self.dispatch.holder(&status.id);
            status.waiting_for_worker = self.dispatch.waiting_for(&status.id);
            if let Some(output) = self.store.last_task_event(&status.id, "output").await? {
                status.last_line = output.payload["text"].as_str().and_then(last_line);
            }
            status.summary = status.line();
        }
        Ok(statuses)
    }

    /// The status of one task.
    pub async fn task_status(&self, task_id: &TaskId) -> StoreResult<TaskStatus> {
        self.status()
            .await?
            .into_iter()
            .find(|s| &s.id == task_id)
            .ok_or_else(|| pushpals_store::StoreError::TaskNotFound(task_id.clone()))
    }
}
