//! New work from chat: the planner's backlog becomes tasks, in the
//! background, while chat has already answered.

use crate::checks::repo_config_at;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::{NewTask, Orchestrator, new_task_id};
use crate::repositories::ServedRepo;
use pushpals_agent::plan::{Plan, make_plan};
use pushpals_agent::tools::confine::Root;
use pushpals_core::payload::{Failure, PlanCreated, PlanTask, PlannedTask};
use pushpals_core::{Actor, AgentWork, NewEvent, TaskId};
use std::collections::HashMap;
use std::sync::Arc;

/// A plan being made, or made and waiting for the person's OK.
#[derive(Debug, Clone)]
pub(crate) struct PendingPlan {
    /// What the person asked for.
    pub request: String,
    /// The plan, once made, while it waits for an OK.
    pub plan: Option<Plan>,
    /// Who asked; the tasks are theirs.
    pub actor: Actor,
    /// The repository the work is in.
    pub repo: String,
}

impl PendingPlan {
    /// A line for status.
    pub(crate) fn line(&self, id: &str) -> String {
        match &self.plan {
            None => format!("planning {id} in {}: {}", self.repo, self.request),
            Some(plan) => {
                let titles: Vec<String> = plan
                    .tasks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("{}. {}", i + 1, t.title))
                    .collect();
                format!(
                    "plan {id} in {} waits for your OK ({}): {}; say `ok {id}` to start it or `discard {id}`",
                    self.repo,
                    plan.summary,
                    titles.join("; ")
                )
            }
        }
    }
}

impl Orchestrator {
    /// Starts planning `request` in `served`; returns the plan's id at
    /// once.
    pub(crate) fn start_planning(
        self: &Arc<Self>,
        request: String,
        served: Arc<ServedRepo>,
        actor: Actor,
    ) -> OrchestratorResult<String> {
        let model = self.settings().agent.planner_model.clone();
        let client = self.model_client(Some(&model)).map_err(|e| {
            OrchestratorError::InvalidInput(format!(
                "new work needs the planner model: {e}; or create a task directly with \
                 `pushpals task --agent`"
            ))
        })?;
        let plan_id = format!("plan-{}", new_task_id()?);
        self.plans.begin(
            &plan_id,
            PendingPlan {
                request: request.clone(),
                plan: None,
                actor: actor.clone(),
                repo: served.name().to_owned(),
            },
        );
        let orchestrator = Arc::clone(self);
        let id = plan_id.clone();
        let asker = actor.clone();
        tokio::spawn(async move {
            let layout = Root::open(served.repo.root())
                .map(|root| pushpals_agent::prompt::layout(&root))
                .unwrap_or_default();
            let planning = make_plan(&client, &request, &layout).await;
            for call in planning.calls {
                let mut detail = call.detail;
                detail.plan_id = Some(id.clone());
                let written = orchestrator
                    .store
                    .write(move |tx| {
                        tx.append(NewEvent::typed(None, Actor::Orchestrator, &detail)?)
                    })
                    .await;
                if let Err(error) = written {
                    tracing::error!(%error, "cannot record a planner call");
                }
            }
            let outcome = match planning.result {
                Ok(plan) => match orchestrator.plans_need_ok(&served).await {
                    Ok(true) => orchestrator.hold_plan(&id, plan, &asker).await,
                    Ok(false) => {
                        orchestrator
                            .start_plan(&id, plan, served.name(), actor)
                            .await
                    }
                    Err(error) => Err(error),
                },
                Err(error) => Err(error.to_string()),
            };
            if let Err(message) = outcome {
                let message = format!("planning failed: {message}");
                let note = device_note(&asker, format!("Plan {id}: {message}"));
                let failure = Failure {
                    message: message.clone(),
                    plan_id: Some(id.clone()),
                };
                let event = match NewEvent::typed(None, Actor::Orchestrator, &failure) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::error!(%error, "cannot encode a planning failure");
                        return;
                    }
                };
                if let Err(error) = orchestrator
                    .store
                    .write(move |tx| append_with_note(tx, event, note))
                    .await
                {
                    tracing::error!(%error, "cannot record a planning failure");
                }
            }
            orchestrator.plans.end_unheld(&id);
        });
        Ok(plan_id)
    }

    /// Whether plans wait for an OK: the server's `[agent] confirm_plans`,
    /// or the repository's `[plan] confirm` at its HEAD.
    async fn plans_need_ok(&self, served: &ServedRepo) -> Result<bool, String> {
        if self.settings().agent.confirm_plans {
            return Ok(true);
        }
        let head = served
            .repo
            .head_commit()
            .await
            .map_err(|e| format!("cannot read the repository's HEAD: {e}"))?;
        Ok(repo_config_at(&served.repo, &head).await?.plan.confirm)
    }

    /// Keeps a made plan until the person says OK, and records it.
    async fn hold_plan(&self, plan_id: &str, plan: Plan, asker: &Actor) -> Result<(), String> {
        let planned: Vec<PlannedTask> = plan
            .tasks
            .iter()
            .map(|t| PlannedTask {
                key: t.key.clone(),
                title: t.title.clone(),
                depends_on: t.depends_on.clone(),
            })
            .collect();
        let held = PlanCreated {
            plan_id: plan_id.to_owned(),
            summary: Some(plan.summary.clone()),
            awaiting_ok: true,
            planned,
            ..PlanCreated::default()
        };
        let event = NewEvent::typed(None, Actor::Orchestrator, &held).map_err(|e| e.to_string())?;
        let note = device_note(
            asker,
            format!("Plan {plan_id} waits for your OK: say \"ok {plan_id}\"."),
        );
        self.store
            .write(move |tx| append_with_note(tx, event, note))
            .await
            .map_err(|e| e.to_string())?;
        self.plans.hold(plan_id, plan);
        Ok(())
    }

    /// Starts (`start`) or drops a plan that waits for an OK.
    pub(crate) async fn settle_plan(
        self: &Arc<Self>,
        plan_id: &str,
        start: bool,
        by: &Actor,
    ) -> OrchestratorResult<String> {
        let pending = self.plans.take_held(plan_id)?;
        let Some(PendingPlan {
            plan: Some(plan),
            actor,
            repo,
            ..
        }) = pending
        else {
            return Err(OrchestratorError::NotFound(format!(
                "no plan {plan_id} waits for an OK; ask `status` for the plans that do"
            )));
        };
        let decision = PlanCreated {
            plan_id: plan_id.to_owned(),
            decision: Some(if start { "started" } else { "discarded" }.to_owned()),
            ..PlanCreated::default()
        };
        let decided = NewEvent::typed(None, by.clone(), &decision)?;
        self.store.write(move |tx| tx.append(decided)).await?;
        if !start {
            return Ok(format!("Discarded {plan_id}."));
        }
        let count = plan.tasks.len();
        self.start_plan(plan_id, plan, &repo, actor)
            .await
            .map_err(OrchestratorError::InvalidInput)?;
        Ok(format!(
            "Started {plan_id}: {count} task{}.",
            if count == 1 { "" } else { "s" }
        ))
    }

    /// Creates the plan's tasks in order (dependencies first) and records
    /// the plan.
    async fn start_plan(
        self: &Arc<Self>,
        plan_id: &str,
        plan: Plan,
        repo: &str,
        actor: Actor,
    ) -> Result<(), String> {
        let mut ids: HashMap<String, TaskId> = HashMap::new();
        let mut created = Vec::new();
        for planned in &plan.tasks {
            let depends_on = planned
                .depends_on
                .iter()
                .filter_map(|key| ids.get(key).cloned())
                .collect();
            let task = self
                .create_task(
                    NewTask {
                        title: planned.title.clone(),
                        command: None,
                        agent: Some(AgentWork {
                            prompt: planned.prompt.clone(),
                            scope: planned.scope.clone(),
                            acceptance: planned.acceptance.clone(),
                            depends_on,
                            plan_id: Some(plan_id.to_owned()),
                            model: None,
                            external: self.settings().agent.external.clone(),
                        }),
                        approve_command: false,
                        repo: Some(repo.to_owned()),
                    },
                    actor.clone(),
                )
                .await
                .map_err(|e| format!("task {:?} of the plan: {e}", planned.key))?;
            created.push(PlanTask {
                key: planned.key.clone(),
                task_id: task.id.to_string(),
                seq: task.seq,
                title: task.title.clone(),
                depends_on: planned.depends_on.clone(),
            });
            ids.insert(planned.key.clone(), task.id);
        }
        let titles: Vec<String> = created
            .iter()
            .map(|t| format!("#{} {}", t.seq, t.title))
            .collect();
        let started = PlanCreated {
            plan_id: plan_id.to_owned(),
            summary: Some(plan.summary.clone()),
            tasks: created,
            ..PlanCreated::default()
        };
        let event =
            NewEvent::typed(None, Actor::Orchestrator, &started).map_err(|e| e.to_string())?;
        let note = device_note(
            &actor,
            format!("Plan ready: {}\n{}", plan.summary, titles.join("\n")),
        );
        self.store
            .write(move |tx| append_with_note(tx, event, note))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The chat line for the device (a person's token) that asked, if a
/// person asked.
fn device_note(asker: &Actor, text: String) -> Option<(String, String)> {
    match asker {
        Actor::User(device) => Some((device.clone(), text)),
        _ => None,
    }
}

/// Appends `event` and, in the same transaction, the asking device's chat
/// line: the chat never tells of a plan the log does not hold.
fn append_with_note(
    tx: &mut pushpals_store::WriteTx<'_>,
    event: NewEvent,
    note: Option<(String, String)>,
) -> pushpals_store::StoreResult<pushpals_core::Event> {
    let appended = tx.append(event)?;
    if let Some((device, text)) = note {
        tx.record_chat(&device, &[(pushpals_store::chat::Speaker::PushPals, &text)])?;
    }
    Ok(appended)
}
