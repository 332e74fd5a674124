//! `GET /readyz`: ready to take work, or why not. Public, like `/healthz`,
//! for probes. It holds no secrets: check names, free space and error
//! messages.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pushpals_orchestrator::Readiness;

/// 200 when the database takes writes, the sandbox runs a command and the
/// disk has room; 503 with the failing checks' reasons otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operate",
    responses(
        (status = 200, description = "ready", body = Object),
        (status = 503, description = "not ready; each check says why", body = Object)
    ),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = state.orchestrator.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
