//! Trying the repository's checks before any task relies on them.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// `POST /api/v1/checks/try`: runs each check of `pushpals.toml` at HEAD
/// in the sandbox, as a task's check would run (policy first, nothing
/// approved), and says whether it passes and, if not, why.
#[utoipa::path(
    post,
    path = "/checks/try",
    tag = "operate",
    params(crate::routes::RepoQuery),
    responses((status = 200, description = "each check, passed or why not", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn try_checks(
    State(state): State<AppState>,
    caller: Caller,
    crate::json::ApiQuery(query): crate::json::ApiQuery<crate::routes::RepoQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Operate)?;
    let trials = state
        .orchestrator
        .try_checks(query.repo.as_deref(), caller.actor())
        .await?;
    let passed = trials.iter().all(|t| t.passed);
    Ok(Json(json!({ "passed": passed, "checks": trials })))
}
