//! `GET /api/v1/status`: the server at a glance, with every task's phase,
//! last step, checks and cost.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_core::Usage;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The repository, the runner backend, the parallelism and tasks by state;
/// and the caller's own scopes (so a device shows only what it may do).
#[utoipa::path(
    get,
    path = "/status",
    tag = "tasks",
    responses((status = 200, description = "repository, runner, tasks by state", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let tasks = state.store().tasks(None).await?;
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &tasks {
        *by_state.entry(task.state.as_str()).or_default() += 1;
    }
    let pending = state.store().approvals(None, true).await?.len();
    let orchestrator = &state.orchestrator;
    let summaries = orchestrator.status().await?;
    let mut usage = Usage::default();
    for task in &tasks {
        usage.add(task.usage);
    }
    Ok(Json(json!({
        // The repositories served, by name (the companion's switcher).
        "repos": orchestrator
            .repositories()
            .all()
            .iter()
            .map(|served| json!({ "name": served.name(), "path": served.record.path }))
            .collect::<Vec<_>>(),
        "runner_backend": orchestrator.runner_backend(),
        "max_parallel": orchestrator.max_parallel(),
        "tasks_by_state": by_state,
        "pending_approvals": pending,
        "tasks": summaries,
        "usage": usage,
        "cost_usd": usage.cost_usd(),
        "insecure_http": state.insecure_http,
        "scopes": caller.scopes(),
        // What a new task can name: the configured models (an agent task
        // needs one) and external agents.
        "models": orchestrator.settings().models.keys().collect::<Vec<_>>(),
        "agents": orchestrator.settings().agents.keys().collect::<Vec<_>>(),
    })))
}
