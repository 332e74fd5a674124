//! New work from chat: the planner makes the plan in the background while
//! chat has already answered; the orchestrator creates its tasks.

use super::planner::PendingPlan;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::{NewTask, Orchestrator, new_task_id};
use crate::repositories::ServedRepo;
use pushpals_agent::plan::Plan;
use pushpals_core::payload::PlanTask;
use pushpals_core::{Actor, AgentWork, TaskId};
use std::collections::HashMap;
use std::sync::Arc;

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
        let client = crate::models::model_client(&self.settings(), Some(&model)).map_err(|e| {
            OrchestratorError::InvalidInput(format!(
                "new work needs the planner model: {e}; or create a task directly with \
                 `pushpals task --agent`"
            ))
        })?;
        let plan_id = format!("plan-{}", new_task_id()?);
        self.planner.begin(
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
        tokio::spawn(async move {
            let planner = &orchestrator.planner;
            let outcome = match planner.make(&id, &client, &request, &served).await {
                Ok(plan) => match planner.needs_ok(&served).await {
                    Ok(true) => planner.hold(&id, plan, &actor).await,
                    Ok(false) => {
                        orchestrator
                            .start_plan(&id, plan, served.name(), &actor)
                            .await
                    }
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            if let Err(why) = outcome {
                planner.record_failure(&id, &actor, &why).await;
            }
            planner.end_unheld(&id);
        });
        Ok(plan_id)
    }

    /// Starts (`start`) or drops a plan that waits for an OK.
    pub(crate) async fn settle_plan(
        self: &Arc<Self>,
        plan_id: &str,
        start: bool,
        by: &Actor,
    ) -> OrchestratorResult<String> {
        let (plan, actor, repo) = self.planner.settle(plan_id, start, by).await?;
        if !start {
            return Ok(format!("Discarded {plan_id}."));
        }
        let count = plan.tasks.len();
        self.start_plan(plan_id, plan, &repo, &actor)
            .await
            .map_err(OrchestratorError::InvalidInput)?;
        Ok(format!(
            "Started {plan_id}: {count} task{}.",
            if count == 1 { "" } else { "s" }
        ))
    }

    /// Creates the plan's tasks in order (dependencies first) and has the
    /// planner record the plan.
    async fn start_plan(
        self: &Arc<Self>,
        plan_id: &str,
        plan: Plan,
        repo: &str,
        actor: &Actor,
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
        self.planner
            .record_started(plan_id, &plan.summary, created, actor)
            .await
    }
}
