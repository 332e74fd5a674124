//! A worker host at work (scope `worker`): it asks for its next
//! instruction (a long poll), fetches a run's base as a git bundle, sends
//! each command's output, what it changed and its end. Every
//! request names the task and the run's lease; only the worker holding
//! that run under that lease is answered (409 once the lease is over).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath as Path, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushpals_core::worker_wire::{Asking, StepReport};
use pushpals_orchestrator::DispatchError;
use serde::Deserialize;
use serde_json::{Value, json};

/// The largest output chunk a worker sends at once.
const MAX_CHUNK: usize = 1024 * 1024;

impl From<DispatchError> for ApiError {
    fn from(error: DispatchError) -> Self {
        let message = error.to_string();
        match error {
            DispatchError::NotYours(_) => Self::not_found(message),
            DispatchError::Stale { .. } => Self::new(StatusCode::CONFLICT, "lease_over", message),
            DispatchError::OutOfOrder { .. } | DispatchError::ChangesFirst { .. } => {
                Self::new(StatusCode::CONFLICT, "out_of_order", message)
            }
            DispatchError::Busy(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message),
            DispatchError::BadInput(_) => Self::bad_request(message),
        }
    }
}

/// The worker's name, from its token (`worker:NAME`).
pub(super) fn worker_name(caller: &Caller) -> Result<String, ApiError> {
    caller
        .name
        .strip_prefix("worker:")
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request("only a worker takes work, with the token it enrolled with")
        })
}

/// `?lease=N[&have=C1,C2...]` of a base.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BaseQuery {
    /// The run's lease, from its `start` instruction.
    pub lease: u64,
    /// Commits the worker holds, comma-separated (at most 32): the bundle
    /// leaves out what they bring.
    #[serde(default)]
    pub have: Option<String>,
}

/// `?lease=N&seq=M` of a command's diff.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The run's lease, from its `start` instruction.
    pub lease: u64,
    /// The command whose changes these are.
    pub seq: u64,
}

/// `?lease=&seq=&chunk=&stream=` of an output chunk.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChunkQuery {
    /// The run's lease.
    pub lease: u64,
    /// The command's number.
    pub seq: u64,
    /// The chunk's number, from 0 per command.
    pub chunk: u64,
    /// `stdout` or `stderr`.
    pub stream: String,
}

/// `POST /api/v1/workers/next`: the worker's next instruction, waiting up
/// to 20 s for one (204 when none came). Taking a run happens here. The
/// body says which run the worker holds (`{"holding": {"task", "lease"}}`
/// or `{}`); a run it no longer holds is lost at once.
#[utoipa::path(
    post,
    path = "/workers/next",
    tag = "workers",
    request_body = Object,
    responses(
        (status = 200, description = "an instruction (`kind`: start, run, warm, seal, cancel, send_artifacts, done)", body = Object),
        (status = 204, description = "nothing to do yet; ask again"),
        crate::openapi::ErrorResponses
    ),
    security(("bearer" = ["worker"]))
)]
pub async fn next(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(asking): ApiJson<Asking>,
) -> Result<Response, ApiError> {
    let name = worker_name(&caller)?;
    let workers = state.store().workers().await?;
    let Some(me) = workers
        .into_iter()
        .find(|w| w.name == name && w.revoked_at.is_none())
    else {
        return Err(ApiError::not_found(format!(
            "no enrolled worker named {name:?}"
        )));
    };
    let dispatch = std::sync::Arc::clone(state.orchestrator.dispatch());
    let mut closing = state.closing.subscribe();
    let instruction = tokio::select! {
        next = dispatch.next(&name, &me.labels, &asking) => next?,
        _ = closing.wait_for(|c| *c) => None,
    };
    Ok(match instruction {
        Some(instruction) => Json(json!(instruction)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `GET /api/v1/workers/tasks/{task}/base`: the run's base, a git bundle
/// of its history to the base commit, without what the commits the worker
/// names in `have` bring; 204 when it holds the base already.
#[utoipa::path(
    get,
    path = "/workers/tasks/{task}/base",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id"), BaseQuery),
    responses(
        (status = 200, description = "a git bundle", content_type = "application/octet-stream"),
        (status = 204, description = "the worker holds the base"),
        crate::openapi::ErrorResponses
    ),
    security(("bearer" = ["worker"]))
)]
pub async fn base(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiQuery(query): ApiQuery<BaseQuery>,
) -> Result<Response, ApiError> {
    let name = worker_name(&caller)?;
    let haves: Vec<String> = query
        .have
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    let Some(bundle) = state
        .orchestrator
        .worker_base_bundle(&name, &task, query.lease, &haves)
        .await??
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from(bundle),
    )
        .into_response())
}

/// `POST /api/v1/workers/tasks/{task}/output`: one chunk of a command's
/// output (the raw bytes, at most 1 MiB); chunks go in order from 0, one
/// sent again is taken once.
#[utoipa::path(
    post,
    path = "/workers/tasks/{task}/output",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id"), ChunkQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "taken", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn output(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiQuery(query): ApiQuery<ChunkQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let name = worker_name(&caller)?;
    let bytes = read_body(body, MAX_CHUNK, "an output chunk").await?;
    state
        .orchestrator
        .dispatch()
        .output(
            &name,
            &task,
            query.lease,
            query.seq,
            query.chunk,
            &query.stream,
            bytes.to_vec(),
        )
        .await?;
    Ok(Json(json!({ "taken": query.chunk })))
}

/// `POST /api/v1/workers/tasks/{task}/result`: how a command ended, after
/// all its output.
#[utoipa::path(
    post,
    path = "/workers/tasks/{task}/result",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id")),
    request_body = Object,
    responses((status = 200, description = "taken", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn result(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiJson(report): ApiJson<StepReport>,
) -> Result<Json<Value>, ApiError> {
    let name = worker_name(&caller)?;
    state
        .orchestrator
        .dispatch()
        .report(&name, &task, &report)?;
    Ok(Json(json!({ "taken": report.seq })))
}

/// `PUT /api/v1/workers/tasks/{task}/diff`: what command `seq` changed in
/// the clone, a binary git diff (at most 64 MiB) from the tree it started
/// at, sent before its result.
#[utoipa::path(
    put,
    path = "/workers/tasks/{task}/diff",
    tag = "workers",
    params(("task" = String, Path, description = "the task's id"), DiffQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "taken", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path(task): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let name = worker_name(&caller)?;
    let limit = pushpals_orchestrator::MAX_WORKER_DIFF;
    let bytes = read_body(body, limit, "the diff").await?;
    let size = bytes.len();
    state
        .orchestrator
        .dispatch()
        .diff(&name, &task, query.lease, query.seq, bytes.to_vec())?;
    Ok(Json(json!({ "bytes": size })))
}

/// The body, refused with 413 beyond `limit` bytes.
pub(super) async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{what} is over {limit} bytes (or the request broke off)"),
        )
    })
}
