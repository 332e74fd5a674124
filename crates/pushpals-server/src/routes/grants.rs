//! Autonomy grants: list, give, take back.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiPath as Path;
use crate::json::ApiQuery;
use crate::routes::RepoQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_core::GrantKind;
use serde_json::{Value, json};

fn kind(name: &str) -> Result<GrantKind, ApiError> {
    GrantKind::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown grant {name:?}: use auto-commit, auto-push or auto-pr"
        ))
    })
}

/// `GET /api/v1/grants`.
#[utoipa::path(
    get,
    path = "/grants",
    tag = "grants",
    params(crate::routes::RepoQuery),
    responses((status = 200, description = "autonomy grants", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RepoQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let served = state.orchestrator.resolve_repo(query.repo.as_deref())?;
    let grants = state.store().grants(served.name()).await?;
    Ok(Json(json!({ "repo": served.name(), "grants": grants })))
}

/// `PUT /api/v1/grants/{kind}`: gives a grant (admin).
#[utoipa::path(
    put,
    path = "/grants/{kind}",
    tag = "grants",
    params(("kind" = inline(pushpals_core::GrantKind), Path), RepoQuery),
    responses((status = 200, description = "grants after the change", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn give(
    state: State<AppState>,
    caller: Caller,
    name: Path<String>,
    query: ApiQuery<RepoQuery>,
) -> Result<Json<Value>, ApiError> {
    change(state, caller, name, query, true).await
}

/// `DELETE /api/v1/grants/{kind}`: takes a grant back (admin).
#[utoipa::path(
    delete,
    path = "/grants/{kind}",
    tag = "grants",
    params(("kind" = inline(pushpals_core::GrantKind), Path), RepoQuery),
    responses((status = 200, description = "grants after the change", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn revoke(
    state: State<AppState>,
    caller: Caller,
    name: Path<String>,
    query: ApiQuery<RepoQuery>,
) -> Result<Json<Value>, ApiError> {
    change(state, caller, name, query, false).await
}

async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<RepoQuery>,
    granted: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let (repo, grants) = state
        .orchestrator
        .set_grant(query.repo.as_deref(), kind(&name)?, granted, &caller.name)
        .await?;
    Ok(Json(json!({ "repo": repo, "grants": grants })))
}
