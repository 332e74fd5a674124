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
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Unknown API paths get a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint; see the README for the routes")
}

/// Parses a task id from a path.
pub(crate) fn task_id(text: &str) -> Result<TaskId, ApiError> {
    TaskId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}
