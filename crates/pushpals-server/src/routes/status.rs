//! `GET /api/v1/status`: the server at a glance.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The repository, the runner backend, the parallelism and tasks by state.
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
    Ok(Json(json!({
        "repo": orchestrator.repo().root(),
        "runner_backend": orchestrator.runner_backend(),
        "max_parallel": orchestrator.max_parallel(),
        "tasks_by_state": by_state,
        "pending_approvals": pending,
    })))
}
