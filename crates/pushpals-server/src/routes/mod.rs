//! Handlers, one module per resource.

pub mod approvals;
pub mod artifacts;
pub mod audit;
pub mod chat;
pub mod check_trials;
pub mod companion;
pub mod findings;
pub mod grants;
pub mod metrics;
pub mod pairing;
pub mod policy;
pub mod push;
pub mod readiness;
pub mod repos;
pub mod retention;
pub mod settings;
pub mod status;
pub mod stream;
pub mod tasks;
pub mod worker_reports;
pub mod worker_runs;
pub mod worker_tunnels;
pub mod workers;

use crate::error::ApiError;
use axum::Json;
use pushpals_core::TaskId;
use serde_json::{Value, json};

/// `?repo=NAME`: which repository a request is about; may be left out
/// when the server has only one.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RepoQuery {
    /// The repository's name.
    pub repo: Option<String>,
}

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

/// A page's `limit`: `default` when absent, else between 1 and `max`;
/// the error says the range and how to page (`hint`).
pub(crate) fn page_limit(
    given: Option<u32>,
    default: u32,
    max: u32,
    hint: &str,
) -> Result<u32, crate::error::ApiError> {
    let limit = given.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(crate::error::ApiError::bad_request(format!(
            "limit must be between 1 and {max}, not {limit}{hint}"
        )))
    }
}

/// The task a path names: its id, or its number (`3` or `#3`, as lists
/// show them).
pub(crate) async fn task_id(state: &crate::AppState, text: &str) -> Result<TaskId, ApiError> {
    let parsed = TaskId::parse(text);
    if let Ok(id) = &parsed
        && state.store().task(id).await.is_ok()
    {
        return Ok(id.clone());
    }
    let number = text.strip_prefix('#').unwrap_or(text);
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
        let seq: i64 = number
            .parse()
            .map_err(|_| ApiError::bad_request(format!("task number {number} is too large")))?;
        return match state.store().task_id_by_seq(seq).await? {
            Some(id) => Ok(id),
            None => Err(ApiError::not_found(format!(
                "no task numbered {seq}; `pushpals status` lists them"
            ))),
        };
    }
    parsed.map_err(|e| ApiError::bad_request(e.to_string()))
}
