//! New work from chat: the planner's backlog becomes tasks, in the
//! background, while chat has already answered.

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::{NewTask, Orchestrator, new_task_id};
use pushpals_agent::plan::{Plan, make_plan};
use pushpals_agent::tools::confine::Root;
use pushpals_core::{Actor, AgentWork, EventKind, NewEvent, TaskId};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// A plan being made.
#[derive(Debug, Clone)]
pub(crate) struct PendingPlan {
    /// What the person asked for.
    pub request: String,
}

impl Orchestrator {
    /// Starts planning `request`; returns the plan's id at once.
    pub(crate) fn start_planning(
        self: &Arc<Self>,
        request: String,
        actor: Actor,
    ) -> OrchestratorResult<String> {
        let model = self.settings.agent.planner_model.clone();
        let client = self.model_client(Some(&model)).map_err(|e| {
            OrchestratorError::InvalidInput(format!(
                "new work needs the planner model: {e}; or create a task directly with \
                 `pushpals task --agent`"
            ))
        })?;
        let plan_id = format!("plan-{}", new_task_id()?);
        if let Ok(mut plans) = self.plans.lock() {
            plans.insert(
                plan_id.clone(),
                PendingPlan {
                    request: request.clone(),
                },
            );
        }
        let orchestrator = Arc::clone(self);
        let id = plan_id.clone();
        tokio::spawn(async move {
            let layout = Root::open(orchestrator.repo.root())
                .map(|root| pushpals_agent::prompt::layout(&root))
                .unwrap_or_default();
            let planning = make_plan(&client, &request, &layout).await;
            for call in planning.calls {
                let mut detail = call.detail;
                detail["plan_id"] = json!(id);
                let event = NewEvent {
                    task_id: None,
                    actor: Actor::Orchestrator,
                    kind: EventKind::ModelCall,
                    payload: detail,
                };
                if let Err(error) = orchestrator.store.write(move |tx| tx.append(event)).await {
                    tracing::error!(%error, "cannot record a planner call");
                }
            }
            let outcome = match planning.result {
                Ok(plan) => orchestrator.start_plan(&id, plan, actor).await,
                Err(error) => Err(error.to_string()),
            };
            if let Err(message) = outcome {
                let event = NewEvent {
                    task_id: None,
                    actor: Actor::Orchestrator,
                    kind: EventKind::Error,
                    payload: json!({ "plan_id": id, "message": format!("planning failed: {message}") }),
                };
                if let Err(error) = orchestrator.store.write(move |tx| tx.append(event)).await {
                    tracing::error!(%error, "cannot record a planning failure");
                }
            }
            if let Ok(mut plans) = orchestrator.plans.lock() {
                plans.remove(&id);
            }
        });
        Ok(plan_id)
    }

    /// Creates the plan's tasks in order (dependencies first) and records
    /// the plan.
    async fn start_plan(
        self: &Arc<Self>,
        plan_id: &str,
        plan: Plan,
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
                        }),
                        approve_command: false,
                    },
                    actor.clone(),
                )
                .await
                .map_err(|e| format!("task {:?} of the plan: {e}", planned.key))?;
            created.push(json!({
                "key": planned.key,
                "task_id": task.id,
                "seq": task.seq,
                "title": task.title,
                "depends_on": planned.depends_on,
            }));
            ids.insert(planned.key.clone(), task.id);
        }
        let event = NewEvent {
            task_id: None,
            actor: Actor::Orchestrator,
            kind: EventKind::PlanCreated,
            payload: json!({ "plan_id": plan_id, "summary": plan.summary, "tasks": created }),
        };
        self.store
            .write(move |tx| tx.append(event))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Requests being planned now.
    pub(crate) fn pending_plans(&self) -> Vec<(String, PendingPlan)> {
        self.plans
            .lock()
            .map(|plans| plans.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}
