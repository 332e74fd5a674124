//! Connections a worker relays for a command it runs (scope `worker`):
//! each is an upgraded request that becomes a byte stream to what the
//! command may reach here: the network proxy of a command granted network,
//! or the model gateway for an external agent. Bounded per command and in
//! all, and only while the command runs.

use super::worker_runs::worker_name;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{ApiPath as Path, ApiQuery};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use pushpals_orchestrator::Relay;
use serde::Deserialize;

/// The protocol a worker upgrades a network request to.
pub const TUNNEL: &str = "pushpals-tunnel";

/// `?lease=&seq=` of a network tunnel.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TunnelQuery {
    /// The run's lease.
    pub lease: u64,
    /// The command granted network.
    pub seq: u64,
}

/// `GET /api/v1/workers/tasks/{task}/network`: one connection of a
/// command granted network, upgraded (`Upgrade: pushpals-tunnel`) to a
/// byte stream to the server's proxy for that command, which lets through
/// only the allowlisted hosts and records each (`network_allowed`,
/// `network_refused`). Only while the command runs.
#[utoipa::path(
    get,
    path = "/workers/tasks/{task}/network",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id"), TunnelQuery),
    responses((status = 101, description = "the tunnel to the proxy"), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn network(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiQuery(query): ApiQuery<TunnelQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    tunnel(&state, &caller, &task, &query, Relay::Network, request)
}

/// `GET /api/v1/workers/tasks/{task}/gateway`: one connection of an
/// external agent running on the worker, upgraded (`Upgrade:
/// pushpals-tunnel`) to a byte stream to the model gateway. The agent's
/// calls still need the task's gateway token, which the gateway checks,
/// limits and records as for an agent here. Only while the agent runs.
#[utoipa::path(
    get,
    path = "/workers/tasks/{task}/gateway",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id"), TunnelQuery),
    responses((status = 101, description = "the tunnel to the gateway"), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn gateway(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiQuery(query): ApiQuery<TunnelQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    tunnel(&state, &caller, &task, &query, Relay::Gateway, request)
}

/// Upgrades a worker's request to a byte stream to what `relay` reaches
/// for the command, held open with its permit.
fn tunnel(
    state: &AppState,
    caller: &Caller,
    task: &str,
    query: &TunnelQuery,
    relay: Relay,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let name = worker_name(caller)?;
    let (socket, permit) =
        state
            .orchestrator
            .dispatch()
            .relay_target(&name, task, query.lease, query.seq, relay)?;
    let asks = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(TUNNEL));
    if !asks {
        return Err(ApiError::bad_request(format!(
            "ask with `Connection: upgrade` and `Upgrade: {TUNNEL}`"
        )));
    }
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let Ok(mut to_socket) = tokio::net::UnixStream::connect(&socket).await else {
            return;
        };
        let mut from_worker = hyper_util::rt::TokioIo::new(upgraded);
        let _ = tokio::io::copy_bidirectional(&mut from_worker, &mut to_socket).await;
        // Held while the connection is open (an upgraded connection no
        // longer counts against the server's connection cap).
        drop(permit);
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, TUNNEL)
        .body(Body::empty())
        .map_err(ApiError::internal)
}
