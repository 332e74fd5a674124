//! Chat: a message is answered at once from the orchestrator's state;
//! new work is planned in the background.

mod intent;
mod planner;
mod planning;
mod status;

pub use intent::{Intent, TaskRef, parse};
pub(crate) use planner::Planner;
pub use status::{CheckStatus, TaskStatus};

use crate::command_gate::ApprovalScope;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use crate::repositories::ServedRepo;
use pushpals_core::payload::ChatExchanged;
use pushpals_core::{Actor, Decision, NewEvent, Task};
use serde::Serialize;
use std::sync::Arc;

/// Longest accepted chat message, in bytes.
const MAX_MESSAGE: usize = 16 * 1024;

/// What chat answered.
#[derive(Debug, Clone, Serialize)]
pub struct ChatReply {
    /// What the message was taken for (`status`, `approve`, `new_work`, ...).
    pub intent: &'static str,
    /// The answer, for people.
    pub reply: String,
    /// The tasks the answer is about.
    pub tasks: Vec<TaskStatus>,
    /// The plan being made, for new work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
}

const HELP: &str = "Tell me what to change and I plan it into tasks. Or: `status`, \
`approve 3`, `deny 3 <reason>`, `cancel 3`, or ask about a task (`how is #3?`). \
Tasks are named by their number (#3) or id.";

impl Orchestrator {
    /// Answers a chat message. `may_approve` says whether the sender may
    /// decide approvals.
    pub async fn chat(
        self: &Arc<Self>,
        message: &str,
        actor: Actor,
        may_approve: bool,
    ) -> OrchestratorResult<ChatReply> {
        if message.len() > MAX_MESSAGE {
            return Err(OrchestratorError::InvalidInput(format!(
                "a chat message is at most {MAX_MESSAGE} bytes"
            )));
        }
        let intent = parse(message);
        if matches!(
            intent,
            Intent::Approve(_) | Intent::Deny(..) | Intent::ConfirmPlan(_)
        ) && !may_approve
        {
            return Err(OrchestratorError::Forbidden(
                "deciding approvals needs a token with the approve scope".into(),
            ));
        }
        let reply = self.answer(&intent, &actor).await?;
        let shown = self.scanner().redact(message).into_owned();
        let exchanged = ChatExchanged {
            message: shown,
            intent: reply.intent.to_owned(),
            reply: reply.reply.clone(),
            plan_id: reply.plan_id.clone(),
        };
        let event = NewEvent::typed(None, actor, &exchanged)?;
        if matches!(intent, Intent::Status | Intent::Help | Intent::Question(_)) {
            // A question changes nothing: answer without waiting for the
            // log's commit (the record follows in the next group commit).
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.write(move |tx| tx.append(event)).await {
                    tracing::error!(%error, "cannot record a chat question");
                }
            });
        } else {
            self.store.write(move |tx| tx.append(event)).await?;
        }
        Ok(reply)
    }

    async fn answer(
        self: &Arc<Self>,
        intent: &Intent,
        actor: &Actor,
    ) -> OrchestratorResult<ChatReply> {
        let reply = |text: String, tasks: Vec<TaskStatus>| ChatReply {
            intent: intent.name(),
            reply: text,
            tasks,
            plan_id: None,
        };
        Ok(match intent {
            Intent::Help => reply(HELP.to_owned(), Vec::new()),
            Intent::Status => {
                let tasks = self.status().await?;
                let mut lines: Vec<String> = tasks.iter().map(TaskStatus::line).collect();
                for (id, plan) in self.planner.list() {
                    lines.push(plan.line(&id));
                }
                let text = if lines.is_empty() {
                    "No tasks yet. Tell me what to change.".to_owned()
                } else {
                    lines.join("\n")
                };
                reply(text, tasks)
            }
            Intent::Question(target) => {
                let task = self.find_task(target).await?;
                let approvals = self.store.approvals(Some(task.id.clone()), true).await?;
                let status = self.task_status(&task.id).await?;
                let mut text = status.line();
                for approval in approvals {
                    text.push_str(&format!(
                        "\npending approval {} ({}): {}",
                        approval.id,
                        approval.action.as_str(),
                        approval.summary
                    ));
                }
                reply(text, vec![status])
            }
            Intent::Approve(target) | Intent::Deny(target, _) => {
                let task = self.find_task(target).await?;
                let (decision, reason) = match intent {
                    Intent::Deny(_, reason) => (Decision::Deny, reason.clone()),
                    _ => (Decision::Approve, None),
                };
                let outcome = self
                    .decide_for_task(
                        &task.id,
                        None,
                        decision,
                        ApprovalScope::Once,
                        &actor_name(actor),
                        reason,
                    )
                    .await?;
                let status = self.task_status(&outcome.task.id).await?;
                let text = format!(
                    "{} {} of #{}: {}",
                    if decision == Decision::Approve {
                        "Approved"
                    } else {
                        "Denied"
                    },
                    outcome.approval.action.as_str(),
                    status.seq,
                    status.line()
                );
                reply(text, vec![status])
            }
            Intent::Cancel(target) => {
                let task = self.find_task(target).await?;
                let task = self.cancel_task(&task.id, actor.clone()).await?;
                let status = self.task_status(&task.id).await?;
                reply(format!("Cancelled: {}", status.line()), vec![status])
            }
            Intent::ConfirmPlan(plan_id) | Intent::DiscardPlan(plan_id) => {
                let start = matches!(intent, Intent::ConfirmPlan(_));
                let text = self.settle_plan(plan_id, start, actor).await?;
                ChatReply {
                    intent: intent.name(),
                    reply: text,
                    tasks: Vec::new(),
                    plan_id: Some(plan_id.clone()),
                }
            }
            Intent::NewWork(request) => {
                let (served, request) = match self.repo_for_chat(request) {
                    Ok(found) => found,
                    Err(question) => return Ok(reply(question, Vec::new())),
                };
                let plan_id = self.start_planning(request, served, actor.clone())?;
                ChatReply {
                    intent: intent.name(),
                    reply: format!(
                        "On it: planning {plan_id}. The tasks show up on the board as soon as the plan is ready; ask `status` any time."
                    ),
                    tasks: Vec::new(),
                    plan_id: Some(plan_id),
                }
            }
        })
    }

    /// The repository new work from chat is for: named as `in NAME: ...`,
    /// or the only one served. Otherwise the question to ask back.
    fn repo_for_chat(&self, request: &str) -> Result<(Arc<ServedRepo>, String), String> {
        let all = self.repos.all();
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        if let Some((name, rest)) = named_repo(request)
            && let Some(served) = all.iter().find(|s| s.name().eq_ignore_ascii_case(name))
        {
            return Ok((Arc::clone(served), rest.to_owned()));
        }
        match all.as_slice() {
            [only] => Ok((Arc::clone(only), request.to_owned())),
            [] => Err("There is no repository to work in yet: add one with                        `pushpals repo add URL|PATH`."
                .to_owned()),
            _ => Err(format!(
                "Which repository? Say it first, like `in {}: {}` (repositories: {}).",
                names[0],
                request.trim(),
                names.join(", ")
            )),
        }
    }

    async fn find_task(&self, target: &TaskRef) -> OrchestratorResult<Task> {
        let tasks = self.store.tasks(None).await?;
        let found = tasks.into_iter().find(|t| match target {
            TaskRef::Seq(seq) => t.seq == *seq,
            TaskRef::Id(id) => t.id.as_str() == id,
        });
        found.ok_or_else(|| {
            OrchestratorError::NotFound(match target {
                TaskRef::Seq(seq) => format!("there is no task #{seq}; ask `status` for the list"),
                TaskRef::Id(id) => format!("there is no task {id}; ask `status` for the list"),
            })
        })
    }
}

/// `in NAME: rest` (or `in NAME, rest`) split into the name and the rest.
fn named_repo(request: &str) -> Option<(&str, &str)> {
    let trimmed = request.trim_start();
    let after = trimmed
        .get(..3)
        .filter(|head| head.eq_ignore_ascii_case("in "))
        .map(|_| &trimmed[3..])?;
    let end = after.find([':', ','])?;
    let name = after[..end].trim();
    let rest = after[end + 1..].trim();
    (!name.is_empty() && !name.contains(' ') && !rest.is_empty()).then_some((name, rest))
}

fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::User(name) => name.clone(),
        other => other.to_string(),
    }
}
