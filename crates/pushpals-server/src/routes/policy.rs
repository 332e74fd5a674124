//! `GET /api/v1/policy`: the command rules in force.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// The built-in and user rules (a repository's rules join per task), each
/// with its source, what it matches, its decision and its reason.
#[utoipa::path(
    get,
    path = "/policy",
    tag = "settings",
    responses((status = 200, description = "the command rules in force", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn rules(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let rules: Vec<Value> = state
        .orchestrator
        .policy_rules()?
        .into_iter()
        .map(|(source, spec)| {
            json!({
                "source": source,
                "programs": spec.programs,
                "prefix": spec.prefix,
                "any_arg": spec.any_arg,
                "decision": spec.decision,
                "network": spec.network,
                "reason": spec.reason,
            })
        })
        .collect();
    Ok(Json(json!({ "rules": rules })))
}
