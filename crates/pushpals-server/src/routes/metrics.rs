//! `GET /api/v1/metrics`: the Prometheus text exposition.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

/// The content type of the text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /api/v1/metrics` (read scope).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operate",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn scrape(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    exposition(&state).await
}

/// `GET /metrics` on the separate metrics address: no token, so bind it
/// where only the scraper can reach it.
pub async fn scrape_unauthenticated(State(state): State<AppState>) -> Result<Response, ApiError> {
    exposition(&state).await
}

async fn exposition(state: &AppState) -> Result<Response, ApiError> {
    let text = state.metrics.render(&state.orchestrator).await?;
    Ok(([(CONTENT_TYPE, EXPOSITION)], text).into_response())
}
