//! Handlers, one module per resource.

pub mod approvals;
pub mod audit;
pub mod chat;
pub mod companion;
pub mod findings;
pub mod grants;
pub mod metrics;
pub mod pairing;
pub mod policy;
pub mod push;
pub mod readiness;
pub mod retention;
pub mod status;
pub mod stream;
pub mod tasks;

use crate::error::ApiError;
use axum::Json;
use pushpals_core::TaskId;
use serde_json::{Value, json};

/// `GET /healthz`: alive. Public.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operate",
    responses((status = 200, description = "alive", body = Object)),
    security(())
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 description. Public:
/// it holds no data, only the routes and their scopes.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operate",
    responses((status = 200, description = "the OpenAPI description", body = Object)),
    security(())
)]
pub async fn description() -> Json<utoipa::openapi::OpenApi> {
    static DESCRIPTION: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Json(DESCRIPTION.get_or_init(crate::openapi).clone())
}

/// Unknown API paths get a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint; see the README for the routes")
}

/// A known API path with a method it does not take: a JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method; /api/v1/openapi.json lists each path's methods",
    )
}

/// Parses a task id from a path.
pub(crate) fn task_id(text: &str) -> Result<TaskId, ApiError> {
    TaskId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}
