//! What a worker host reports about a run besides its commands: what it
//! did about a warm cache, and the run's artifacts (each file's bytes, then
//! which it took). Checked against the run's holder and lease, as every
//! worker request.

use super::worker_runs::{read_body, worker_name};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath as Path, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use pushpals_core::worker_wire::{ArtifactsReport, WarmReport};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/v1/workers/tasks/{task}/warm`: what the worker did about a
/// warm cache after `warm` (it gave the clone its cache, or made a tree to
/// build one in) or `seal` (it kept the build and gave the clone a copy),
/// or why it could not.
#[utoipa::path(
    post,
    path = "/workers/tasks/{task}/warm",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id")),
    request_body = Object,
    responses((status = 200, description = "taken", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn warm(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiJson(report): ApiJson<WarmReport>,
) -> Result<Json<Value>, ApiError> {
    let name = worker_name(&caller)?;
    let key = report.key.clone();
    state
        .orchestrator
        .dispatch()
        .warm_report(&name, &task, report)?;
    Ok(Json(json!({ "taken": key })))
}

/// `?lease=N`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LeaseQuery {
    /// The run's lease, from its `start` instruction.
    pub lease: u64,
}

/// `PUT /api/v1/workers/tasks/{task}/artifacts/{sha256}`: one artifact
/// file's bytes (at most 10 MiB), checked against its SHA-256 and kept by
/// it until the worker's report names it.
#[utoipa::path(
    put,
    path = "/workers/tasks/{task}/artifacts/{sha256}",
    tag = "workers",
    params(
        ("task" = String, Path, description = "the task's id"),
        ("sha256" = String, Path, description = "the file's SHA-256 in hex"),
        LeaseQuery
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "kept", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn artifact(
    State(state): State<AppState>,
    caller: Caller,
    Path((task, sha256)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<LeaseQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let name = worker_name(&caller)?;
    let limit = usize::try_from(pushpals_orchestrator::MAX_ARTIFACT_BYTES).unwrap_or(usize::MAX);
    let bytes = read_body(body, limit, "an artifact").await?;
    state
        .orchestrator
        .worker_artifact(&name, &task, query.lease, &sha256, &bytes)??;
    Ok(Json(json!({ "bytes": bytes.len() })))
}

/// `POST /api/v1/workers/tasks/{task}/artifacts`: the artifacts the worker
/// took from the run's clone (each sent first) and those it refused.
#[utoipa::path(
    post,
    path = "/workers/tasks/{task}/artifacts",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id")),
    request_body = Object,
    responses((status = 200, description = "taken", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn artifacts(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiJson(report): ApiJson<ArtifactsReport>,
) -> Result<Json<Value>, ApiError> {
    let name = worker_name(&caller)?;
    let taken = report.taken.len();
    state
        .orchestrator
        .dispatch()
        .artifacts_report(&name, &task, report)?;
    Ok(Json(json!({ "taken": taken })))
}
