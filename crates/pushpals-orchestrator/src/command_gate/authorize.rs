//! The command gate's flow, which every command of a task passes before it
//! runs: allow runs, deny fails the step, ask waits for the person's
//! approval (the task waits meanwhile); every verdict is recorded.

use super::CommandGate;
use pushpals_core::payload::PolicyDecision;
use pushpals_core::{
    Actor, ApprovalAction, ApprovalId, ApprovalState, Decision as Answer, NewEvent, TaskId,
    TaskState,
};
use pushpals_policy::{Decision, Policy};
use pushpals_store::{StoreError, TaskUpdate};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

/// How far an approval of a command reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalScope {
    /// This one run of the command.
    #[default]
    Once,
    /// The same command line for the rest of this task.
    Task,
    /// Always: a rule allowing the command's pattern is added to the
    /// person's policy file.
    Always,
}

/// The person's answer to a command approval, as passed to the waiting
/// driver.
#[derive(Debug, Clone)]
pub(crate) struct CommandAnswer {
    pub decision: Answer,
    pub scope: ApprovalScope,
    pub by: String,
    pub reason: Option<String>,
}

/// Why a command may not run.
pub(crate) enum Refusal {
    /// Policy denies it, or the person did; the reason says which.
    Refused(String),
    /// The task was cancelled while waiting.
    Cancelled,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidTransition(_) => Self::Cancelled,
            other => Self::Store(other),
        }
    }
}

impl CommandGate {
    /// Judges `command_line` for a step of a task; records the verdict;
    /// returns when it may run, with whether it needs the network. `resume`
    /// is the state to go back to after waiting (running or checking).
    pub(crate) async fn authorize(
        &self,
        policy: &Policy,
        task_id: &TaskId,
        step: &str,
        command_line: &str,
        resume: TaskState,
        cancel: &watch::Receiver<bool>,
    ) -> Result<bool, Refusal> {
        let granted = self.is_granted(task_id, command_line);
        let verdict = self
            .judge_recorded(policy, task_id, step, command_line, granted)
            .await?;
        let network = verdict.network;
        match verdict.decision {
            Decision::Allow => Ok(network),
            Decision::Deny => Err(Refusal::Refused(format!(
                "policy denies {step} `{command_line}`: {}",
                verdict.reason()
            ))),
            Decision::Ask if granted => Ok(network),
            Decision::Ask => {
                let summary = format!("Run `{command_line}` ({step})? {}", verdict.reason());
                let detail =
                    json!({ "step": step, "command": command_line, "findings": verdict.findings });
                self.wait_for_answer(task_id, step, command_line, summary, detail, resume, cancel)
                    .await
                    .map(|()| network)
            }
        }
    }

    /// Asks the person about a command the orchestrator itself runs for
    /// the task (the setup step), whatever policy would say; waits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn ask_for_command(
        &self,
        task_id: &TaskId,
        step: &str,
        command_line: &str,
        summary: String,
        detail: serde_json::Value,
        resume: TaskState,
        cancel: &watch::Receiver<bool>,
    ) -> crate::lifecycle::StepResult<()> {
        use crate::lifecycle::Stop;
        match self
            .wait_for_answer(task_id, step, command_line, summary, detail, resume, cancel)
            .await
        {
            Ok(()) => Ok(()),
            Err(Refusal::Refused(reason)) => Err(Stop::Failed(reason)),
            Err(Refusal::Cancelled) => Err(Stop::Superseded),
            Err(Refusal::Store(error)) => Err(error.into()),
        }
    }

    /// Judges a command line for a step of a task and records the verdict
    /// (`granted`: the person approved this line for the task).
    pub(crate) async fn judge_recorded(
        &self,
        policy: &Policy,
        task_id: &TaskId,
        step: &str,
        command_line: &str,
        granted: bool,
    ) -> Result<pushpals_policy::Verdict, StoreError> {
        let verdict = policy.judge(command_line);
        let event = NewEvent::typed(
            Some(task_id),
            Actor::Orchestrator,
            &PolicyDecision {
                step: step.to_owned(),
                command: Some(command_line.to_owned()),
                decision: Some(verdict.decision.to_string()),
                findings: serde_json::to_value(&verdict.findings)?,
                granted_for_task: granted && verdict.decision == Decision::Ask,
                network: verdict.network,
                ..PolicyDecision::default()
            },
        )?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(verdict)
    }

    #[allow(clippy::too_many_arguments)]
    async fn wait_for_answer(
        &self,
        task_id: &TaskId,
        step: &str,
        command_line: &str,
        summary: String,
        detail: serde_json::Value,
        resume: TaskState,
        cancel: &watch::Receiver<bool>,
    ) -> Result<(), Refusal> {
        let id = task_id.clone();
        let approval = self
            .store
            .write(move |tx| {
                tx.transition(
                    &id,
                    TaskState::Waiting,
                    TaskUpdate::default(),
                    Actor::Orchestrator,
                    json!({ "waiting_for": "command approval" }),
                )?;
                tx.request_approval(&id, ApprovalAction::Command, &summary, detail)
            })
            .await?;
        let answered = self.wait_for(approval.id, command_line);
        // Decided between the request and the registration: read it back.
        let answer = match self.already_answered(approval.id).await? {
            Some(answer) => answer,
            None => {
                let mut cancel = cancel.clone();
                tokio::select! {
                    answer = answered => match answer {
                        Ok(answer) => answer,
                        Err(_) => return Err(Refusal::Cancelled),
                    },
                    _ = cancel.wait_for(|cancelled| *cancelled) => {
                        self.forget(approval.id);
                        return Err(Refusal::Cancelled);
                    }
                }
            }
        };
        self.forget(approval.id);
        match answer.decision {
            Answer::Approve => {
                if answer.scope != ApprovalScope::Once {
                    self.grant(task_id, command_line);
                }
                let (id, by) = (task_id.clone(), answer.by.clone());
                self.store
                    .write(move |tx| {
                        tx.transition(
                            &id,
                            resume,
                            TaskUpdate::default(),
                            Actor::Orchestrator,
                            json!({ "approved_by": by }),
                        )
                    })
                    .await?;
                Ok(())
            }
            Answer::Deny => Err(Refusal::Refused(format!(
                "{} denied {step} `{command_line}`{}",
                answer.by,
                answer.reason.map(|r| format!(": {r}")).unwrap_or_default()
            ))),
        }
    }

    async fn already_answered(
        &self,
        approval_id: ApprovalId,
    ) -> Result<Option<CommandAnswer>, StoreError> {
        let approval = self.store.approval(approval_id).await?;
        let decision = match approval.state {
            ApprovalState::Pending => return Ok(None),
            ApprovalState::Approved => Answer::Approve,
            ApprovalState::Denied | ApprovalState::Withdrawn => Answer::Deny,
        };
        Ok(Some(CommandAnswer {
            decision,
            scope: ApprovalScope::Once,
            by: approval.decided_by.unwrap_or_default(),
            reason: approval.reason,
        }))
    }
}
