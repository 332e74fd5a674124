//! The audit log: verify, export, blobs.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiPath as Path;
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use pushpals_store::{AuditReport, EventsBefore};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/audit/verify`: recomputes the chain. 200 with `ok: false`
/// and the first broken event when it does not hold (the check itself
/// succeeded; its finding is in the body).
#[utoipa::path(
    get,
    path = "/audit/verify",
    tag = "audit",
    responses((status = 200, description = "the chain check: ok, first broken event, head", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditReport>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.store().verify_chain().await?))
}

/// `GET /api/v1/audit/export`: every event as JSON lines.
#[utoipa::path(
    get,
    path = "/audit/export",
    tag = "audit",
    responses((status = 200, description = "every event, one JSON object per line", content_type = "application/x-ndjson", body = String), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Read)?;
    let body = state.store().export_jsonl().await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}

/// Which part of the log to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogPage {
    /// Only events before this id (the newest when absent).
    pub before: Option<i64>,
    /// Only this kind of event (`approval_decided`, ...).
    pub kind: Option<String>,
    /// Only this task's events (its id or number).
    pub task: Option<String>,
    /// At most this many (default 200, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/audit/events`: the log from its newest event backwards, a
/// page at a time, filtered by kind and task; with every kind the log
/// holds, for choosing a filter. A screen reads this instead of the whole
/// export.
#[utoipa::path(
    get,
    path = "/audit/events",
    tag = "audit",
    params(LogPage),
    responses((status = 200, description = "a page of events, oldest first, and the kinds", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<LogPage>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = super::page_limit(page.limit, 200, 1000, "; page with `before`")?;
    let task_id = match page.task.as_deref().map(str::trim) {
        Some(task) if !task.is_empty() => Some(super::task_id(&state, task).await?),
        _ => None,
    };
    let kind = page.kind.filter(|k| !k.is_empty());
    let events = state
        .store()
        .events_before(EventsBefore {
            before: page.before,
            task_id,
            kind,
            limit,
        })
        .await?;
    let kinds = state.store().event_kinds().await?;
    Ok(Json(json!({ "events": events, "kinds": kinds })))
}

/// `GET /api/v1/blobs/{hash}`: a stored blob (command output, diffs).
#[utoipa::path(
    get,
    path = "/blobs/{hash}",
    tag = "audit",
    params(("hash" = String, Path, description = "a SHA-256", pattern = r"^[0-9a-f]{64}$")),
    responses((status = 200, description = "the stored bytes", content_type = "application/octet-stream", body = String), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn blob(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Read)?;
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ApiError::bad_request("a blob hash is 64 hex characters"));
    }
    let content = state
        .store()
        .blob(&hash)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no blob {hash}")))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        content,
    ))
}
