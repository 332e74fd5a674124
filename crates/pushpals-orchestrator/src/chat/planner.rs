//! The planner, a part of the orchestrator: it turns a chat request into a
//! plan with the planner model, records the model's calls and what became
//! of each plan, and owns the plans being made or held for the person's
//! OK (in memory; what a plan did is in the event log). Creating a plan's
//! tasks is the orchestrator's: the planner hands the plan back.

use crate::checks::repo_config_at;
use crate::current::Current;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::repositories::ServedRepo;
use crate::settings::Settings;
use pushpals_agent::ModelClient;
use pushpals_agent::plan::{Plan, make_plan};
use pushpals_agent::tools::confine::Root;
use pushpals_core::payload::{Failure, PlanCreated, PlanTask, PlannedTask};
use pushpals_core::{Actor, NewEvent};
use pushpals_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// See the module's documentation.
pub(crate) struct Planner {
    store: Store,
    settings: Arc<Current<Settings>>,
    plans: Mutex<HashMap<String, PendingPlan>>,
}

impl Planner {
    /// A planner over these handles.
    pub(crate) fn new(store: Store, settings: Arc<Current<Settings>>) -> Self {
        Self {
            store,
            settings,
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// A request whose plan is being made.
    pub(crate) fn begin(&self, plan_id: &str, pending: PendingPlan) {
        if let Ok(mut plans) = self.plans.lock() {
            plans.insert(plan_id.to_owned(), pending);
        }
    }

    /// Makes the plan for `request` in `served` with `client`, recording
    /// each call the planner model answered.
    pub(crate) async fn make(
        &self,
        plan_id: &str,
        client: &ModelClient,
        request: &str,
        served: &ServedRepo,
    ) -> Result<Plan, String> {
        let layout = Root::open(served.repo.root())
            .map(|root| pushpals_agent::prompt::layout(&root))
            .unwrap_or_default();
        let planning = make_plan(client, request, &layout).await;
        for call in planning.calls {
            let mut detail = call.detail;
            detail.plan_id = Some(plan_id.to_owned());
            let written = self
                .store
                .write(move |tx| tx.append(NewEvent::typed(None, Actor::Orchestrator, &detail)?))
                .await;
            if let Err(error) = written {
                tracing::error!(%error, "cannot record a planner call");
            }
        }
        planning.result.map_err(|e| e.to_string())
    }

    /// Whether plans wait for an OK: the server's `[agent] confirm_plans`,
    /// or the repository's `[plan] confirm` at its HEAD.
    pub(crate) async fn needs_ok(&self, served: &ServedRepo) -> Result<bool, String> {
        if self.settings.get().agent.confirm_plans {
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
    pub(crate) async fn hold(
        &self,
        plan_id: &str,
        plan: Plan,
        asker: &Actor,
    ) -> Result<(), String> {
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
        let note = device_note(
            asker,
            format!("Plan {plan_id} waits for your OK: say \"ok {plan_id}\"."),
        );
        self.record(&held, Actor::Orchestrator, note).await?;
        if let Ok(mut plans) = self.plans.lock()
            && let Some(pending) = plans.get_mut(plan_id)
        {
            pending.plan = Some(plan);
        }
        Ok(())
    }

    /// Records that planning failed, and tells the asking device.
    pub(crate) async fn record_failure(&self, plan_id: &str, asker: &Actor, why: &str) {
        let message = format!("planning failed: {why}");
        let note = device_note(asker, format!("Plan {plan_id}: {message}"));
        let failure = Failure {
            message,
            plan_id: Some(plan_id.to_owned()),
        };
        if let Err(error) = self.record(&failure, Actor::Orchestrator, note).await {
            tracing::error!(%error, "cannot record a planning failure");
        }
    }

    /// Forgets a request whose planning ended without a plan to hold.
    pub(crate) fn end_unheld(&self, plan_id: &str) {
        if let Ok(mut plans) = self.plans.lock()
            && plans.get(plan_id).is_some_and(|p| p.plan.is_none())
        {
            plans.remove(plan_id);
        }
    }

    /// Takes a held plan to start (`start`) or drop it, recording who
    /// decided; the plan and who asked for it, to start.
    pub(crate) async fn settle(
        &self,
        plan_id: &str,
        start: bool,
        by: &Actor,
    ) -> OrchestratorResult<(Plan, Actor, String)> {
        let taken = {
            let mut plans = self
                .plans
                .lock()
                .map_err(|_| OrchestratorError::Internal("the plans lock is poisoned".into()))?;
            match plans.get(plan_id) {
                Some(p) if p.plan.is_some() => plans.remove(plan_id),
                Some(_) => {
                    return Err(OrchestratorError::InvalidInput(format!(
                        "{plan_id} is still being planned; try again when it waits for your OK"
                    )));
                }
                None => None,
            }
        };
        let Some(PendingPlan {
            plan: Some(plan),
            actor,
            repo,
            ..
        }) = taken
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
        Ok((plan, actor, repo))
    }

    /// Records the tasks a started plan created, and tells the asking
    /// device.
    pub(crate) async fn record_started(
        &self,
        plan_id: &str,
        summary: &str,
        created: Vec<PlanTask>,
        asker: &Actor,
    ) -> Result<(), String> {
        let titles: Vec<String> = created
            .iter()
            .map(|t| format!("#{} {}", t.seq, t.title))
            .collect();
        let started = PlanCreated {
            plan_id: plan_id.to_owned(),
            summary: Some(summary.to_owned()),
            tasks: created,
            ..PlanCreated::default()
        };
        let note = device_note(
            asker,
            format!("Plan ready: {summary}\n{}", titles.join("\n")),
        );
        self.record(&started, Actor::Orchestrator, note).await
    }

    /// Requests being planned, and plans waiting for an OK.
    pub(crate) fn list(&self) -> Vec<(String, PendingPlan)> {
        self.plans
            .lock()
            .map(|plans| plans.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Appends `payload`'s event and, in the same transaction, the asking
    /// device's chat line: the chat never tells of a plan the log does not
    /// hold.
    async fn record<T: pushpals_core::EventPayload>(
        &self,
        payload: &T,
        actor: Actor,
        note: Option<(String, String)>,
    ) -> Result<(), String> {
        let event = NewEvent::typed(None, actor, payload).map_err(|e| e.to_string())?;
        self.store
            .write(move |tx| {
                tx.append(event)?;
                if let Some((device, text)) = note {
                    tx.record_chat(&device, &[(pushpals_store::chat::Speaker::PushPals, &text)])?;
                }
                Ok(())
            })
            .await
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
