//! The audit log: verify, export, blobs.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiPath as Path;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use pushpals_store::AuditReport;

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
