//! `POST /api/v1/gc` and `GET /api/v1/du`.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_orchestrator::{GcReport, SpaceReport};
use serde::Deserialize;

/// The body of `POST /api/v1/gc`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// Remove worktrees of tasks that ended at least this many days ago
    /// (default: `[retention] worktree_days`).
    #[schema(maximum = 36500)]
    pub older_than_days: Option<u32>,
    /// Only report what would go.
    #[serde(default)]
    pub dry_run: bool,
}

/// Cleans up now (admin).
#[utoipa::path(
    post,
    path = "/gc",
    tag = "operate",
    request_body = GcRequest,
    responses((status = 200, description = "what was removed", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn gc(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<GcRequest>,
) -> Result<Json<GcReport>, ApiError> {
    caller.require(Scope::Admin)?;
    let days = match body.older_than_days {
        Some(days) if days > 36_500 => {
            return Err(ApiError::bad_request(format!(
                "older_than_days must be at most 36500 (a hundred years), not {days}"
            )));
        }
        Some(days) => u64::from(days),
        None => state.orchestrator.settings().retention.worktree_days,
    };
    Ok(Json(
        state
            .orchestrator
            .gc(days, body.dry_run, caller.actor())
            .await?,
    ))
}

/// Where the space goes.
#[utoipa::path(
    get,
    path = "/du",
    tag = "operate",
    responses((status = 200, description = "space used", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn du(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SpaceReport>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.orchestrator.space().await?))
}
