//! The repositories a server serves: list, add (clone or local), remove.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiPath as Path;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pushpals_orchestrator::AddRepository;
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/repos`: the registered repositories with their base
/// branch, last fetch and counts.
#[utoipa::path(
    get,
    path = "/repos",
    tag = "repos",
    responses((status = 200, description = "the repositories", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let repos = state.orchestrator.repository_views().await?;
    Ok(Json(json!({ "repos": repos })))
}

/// `POST /api/v1/repos` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRepo {
    /// A URL to clone (a token in it is used and kept in memory only), or
    /// the absolute path of a checkout on the server to use in place.
    pub source: String,
    /// Its name here (default: the URL's or directory's last part).
    pub name: Option<String>,
    /// Its base branch (default: the remote's default branch).
    pub branch: Option<String>,
}

/// `POST /api/v1/repos`: clones or adopts a repository (admin). 201.
#[utoipa::path(
    post,
    path = "/repos",
    tag = "repos",
    request_body = AddRepo,
    responses((status = 201, description = "the repository", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AddRepo>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Admin)?;
    let served = state
        .orchestrator
        .add_repository(
            AddRepository {
                source: body.source,
                name: body.name,
                branch: body.branch,
            },
            caller.actor(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": served.name(),
            "path": served.record.path,
            "origin": served.record.origin,
            "branch": served.record.branch,
            "credential_in_memory": served.holds_credential(),
        })),
    ))
}

/// `DELETE /api/v1/repos/{name}`: takes a repository off the server
/// (admin); refused with 409 while it has tasks that need it.
#[utoipa::path(
    delete,
    path = "/repos/{name}",
    tag = "repos",
    params(("name" = String, Path)),
    responses((status = 200, description = "the removed repository", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let removed = state
        .orchestrator
        .remove_repository(&name, caller.actor())
        .await?;
    Ok(Json(
        json!({ "removed": removed.name, "deleted_clone": removed.is_clone() }),
    ))
}
