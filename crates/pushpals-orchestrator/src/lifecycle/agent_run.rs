//! Running the built-in agent as a task's worker: the orchestrator is its
//! host, so every command it runs passes the same policy gate and sandbox
//! as any other, and every step lands in the event log.

use super::Lifecycle;
use super::driver::{Gated, Step, StepResult, Stop};
use crate::checks::RepoConfig;
use pushpals_agent::tools::confine::Root;
use pushpals_agent::{AgentError, AgentHost, AgentRun, Brief, CommandOutcome, HostError};
use pushpals_core::{Actor, AgentWork, EventKind, NewEvent, Task, TaskId, TaskState, Usage};
use pushpals_policy::Policy;
use pushpals_workspace::SecretScanner;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::watch;

/// The person, as a message's addressee.
const PERSON: &str = "person";

impl Lifecycle {
    /// Runs the agent in the task's worktree until it finishes.
    pub(crate) async fn run_agent(
        self: &Arc<Self>,
        policy: &Policy,
        task: &Task,
        work: &AgentWork,
        config: &RepoConfig,
        worktree: &str,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let client = crate::models::model_client(&self.settings(), work.model.as_deref())
            .map_err(Stop::Failed)?;
        let root = Root::open(std::path::Path::new(worktree))
            .map_err(|e| Stop::Failed(format!("cannot open the worktree: {e}")))?;
        let brief = Brief {
            title: task.title.clone(),
            prompt: work.prompt.clone(),
            scope: work.scope.clone(),
            acceptance: work.acceptance.clone(),
            checks: config
                .checks()
                .into_iter()
                .map(|c| (c.name.to_owned(), c.command_line))
                .collect(),
        };
        let system = pushpals_agent::prompt::system_prompt(&brief, &root);
        let host = TaskHost {
            lifecycle: Arc::clone(self),
            task_id: task.id.clone(),
            policy: policy.clone(),
            worktree: worktree.to_owned(),
            cancel: cancel.clone(),
            scanner: self.scanner(),
            commands: AtomicU32::new(0),
        };
        let run = AgentRun {
            client: Arc::new(client),
            system,
            task: work.prompt.clone(),
            budget: self.settings().agent.budget.clone(),
            max_tool_output: self.settings().agent.max_tool_output,
            root: Arc::new(root),
            cancel: cancel.clone(),
        };
        match pushpals_agent::run(run, &host).await {
            Ok(_) => Ok(()),
            Err(AgentError::Cancelled) => Err(Stop::Superseded),
            // Its commands' worker was lost: the run is offered again.
            Err(other) => Err(self.failed_or_lost(&task.id, format!("the agent stopped: {other}"))),
        }
    }

    /// Delivers a message from `from` to a task's inbox or to the person.
    pub(crate) async fn deliver_message(
        &self,
        from: &TaskId,
        to: &str,
        text: &str,
    ) -> Result<String, String> {
        let text = self.scanner().redact(text).into_owned();
        let target = if to == PERSON {
            None
        } else {
            let id = TaskId::parse(to)
                .map_err(|_| format!("{to:?} is neither \"person\" nor a task id"))?;
            let other = self
                .store
                .task(&id)
                .await
                .map_err(|_| format!("there is no task {to}"))?;
            if other.state.is_final() {
                return Err(format!(
                    "task {to} has ended ({}); nobody reads its messages",
                    other.state
                ));
            }
            Some(id)
        };
        let sent = pushpals_core::payload::MessageSent {
            to: to.to_owned(),
            text: text.to_owned(),
        };
        let event = NewEvent::typed(Some(from), Actor::Worker(from.clone()), &sent)
            .map_err(|e| e.to_string())?;
        self.store
            .write(move |tx| tx.append(event))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(id) = target {
            self.inboxes.post(&id, format!("from task {from}: {text}"));
            Ok(format!("delivered to task {to}"))
        } else {
            Ok("delivered to the person".into())
        }
    }
}

/// The task's lifecycle, seen from one agent run.
struct TaskHost {
    lifecycle: Arc<Lifecycle>,
    task_id: TaskId,
    policy: Policy,
    worktree: String,
    cancel: watch::Receiver<bool>,
    scanner: SecretScanner,
    commands: AtomicU32,
}

fn failed(error: impl std::fmt::Display) -> HostError {
    HostError::Failed(error.to_string())
}

impl AgentHost for TaskHost {
    async fn record(&self, kind: EventKind, detail: Value) -> Result<(), HostError> {
        let event = NewEvent::for_task(
            &self.task_id,
            Actor::Worker(self.task_id.clone()),
            kind,
            detail,
        );
        self.lifecycle
            .store
            .write(move |tx| tx.append(event))
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn record_model_call(
        &self,
        call: pushpals_core::payload::ModelCall,
        usage: Usage,
    ) -> Result<(), HostError> {
        let id = self.task_id.clone();
        self.lifecycle
            .store
            .write(move |tx| {
                tx.append(NewEvent::typed(
                    Some(&id),
                    Actor::Worker(id.clone()),
                    &call,
                )?)?;
                tx.add_usage(&id, usage)
            })
            .await
            .map_err(failed)
    }

    async fn run_command(&self, command_line: &str) -> Result<CommandOutcome, HostError> {
        let number = self.commands.fetch_add(1, Ordering::Relaxed) + 1;
        let step = Step {
            name: format!("agent:{number}"),
            command_line: command_line.to_owned(),
            timeout: self.lifecycle.settings().command_timeout(),
            resume: TaskState::Running,
        };
        let gated = self
            .lifecycle
            .run_gated(
                &self.policy,
                &self.task_id,
                &step,
                &self.worktree,
                &self.cancel,
            )
            .await;
        match gated {
            Ok(Gated::Ran(recorded)) => Ok(CommandOutcome::Ran {
                exit_code: recorded.outcome.exit_code,
                summary: recorded.outcome.describe(),
                output: recorded.output,
            }),
            Ok(Gated::Refused(reason)) => Ok(CommandOutcome::Refused(reason)),
            Err(Stop::Superseded) => Err(HostError::Cancelled),
            Err(Stop::Failed(reason) | Stop::Lost(reason)) => Err(HostError::Failed(reason)),
        }
    }

    async fn send_message(&self, to: &str, text: &str) -> Result<String, String> {
        self.lifecycle
            .deliver_message(&self.task_id, to, text)
            .await
    }

    fn inbox(&self) -> Vec<String> {
        self.lifecycle.inboxes.take(&self.task_id)
    }

    fn redact(&self, text: &str) -> String {
        self.scanner.redact(text).into_owned()
    }
}
