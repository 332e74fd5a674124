//! The plans chat is making or holding for an OK: owned here, behind one
//! lock; what a plan did is in the event log.

use super::PendingPlan;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_agent::plan::Plan;
use std::collections::HashMap;
use std::sync::Mutex;

/// Plans by id.
#[derive(Default)]
pub(crate) struct Plans(Mutex<HashMap<String, PendingPlan>>);

impl Plans {
    /// A request whose plan is being made.
    pub(crate) fn begin(&self, plan_id: &str, pending: PendingPlan) {
        if let Ok(mut plans) = self.0.lock() {
            plans.insert(plan_id.to_owned(), pending);
        }
    }

    /// The made plan, held for the person's OK.
    pub(crate) fn hold(&self, plan_id: &str, plan: Plan) {
        if let Ok(mut plans) = self.0.lock()
            && let Some(pending) = plans.get_mut(plan_id)
        {
            pending.plan = Some(plan);
        }
    }

    /// Forgets a request whose planning ended without a plan to hold.
    pub(crate) fn end_unheld(&self, plan_id: &str) {
        if let Ok(mut plans) = self.0.lock()
            && plans.get(plan_id).is_some_and(|p| p.plan.is_none())
        {
            plans.remove(plan_id);
        }
    }

    /// Takes a held plan to start or drop it; `None` when no such plan is
    /// known, an error while it is still being made.
    pub(crate) fn take_held(&self, plan_id: &str) -> OrchestratorResult<Option<PendingPlan>> {
        let mut plans = self
            .0
            .lock()
            .map_err(|_| OrchestratorError::Internal("the plans lock is poisoned".into()))?;
        match plans.get(plan_id) {
            Some(p) if p.plan.is_some() => Ok(plans.remove(plan_id)),
            Some(_) => Err(OrchestratorError::InvalidInput(format!(
                "{plan_id} is still being planned; try again when it waits for your OK"
            ))),
            None => Ok(None),
        }
    }

    /// Requests being planned, and plans waiting for an OK.
    pub(crate) fn list(&self) -> Vec<(String, PendingPlan)> {
        self.0
            .lock()
            .map(|plans| plans.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}
