//! Approvals: list and decide.

use super::task_id;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiPath as Path;
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_core::{ApprovalAction, Decision};
use pushpals_orchestrator::{ApprovalScope, DecisionOutcome};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/approvals` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilter {
    /// Only pending ones (default true).
    pub pending: Option<bool>,
}

/// `GET /api/v1/approvals?pending=true|false`.
#[utoipa::path(
    get,
    path = "/approvals",
    tag = "approvals",
    params(ApprovalFilter),
    responses((status = 200, description = "approvals, pending ones by default", body = crate::openapi::ApprovalList), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ApprovalFilter>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let approvals = state
        .store()
        .approvals(None, filter.pending.unwrap_or(true))
        .await?;
    Ok(Json(json!({ "approvals": approvals })))
}

/// `POST /api/v1/approvals/{id}/decide` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// `approve` or `deny`.
    pub decision: Decision,
    /// Why, shown in the log.
    pub reason: Option<String>,
    /// For command approvals: `once` (default) or `task`.
    #[serde(default)]
    pub scope: ApprovalScope,
}

/// `POST /api/v1/approvals/{id}/decide`. Deciding twice is 409.
#[utoipa::path(
    post,
    path = "/approvals/{id}/decide",
    tag = "approvals",
    params(("id" = i64, Path, description = "an approval id")),
    request_body = DecideBody,
    responses((status = 200, description = "what the decision did", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["approve"]))
)]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecideBody>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    caller.require(Scope::Approve)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not an approval id (a number)")))?;
    let outcome = state
        .orchestrator
        .decide(id, body.decision, body.scope, &caller.name, body.reason)
        .await?;
    Ok(Json(outcome))
}

/// `POST /api/v1/tasks/{id}/approve|deny` body.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDecisionBody {
    /// Which pending approval, when the task has several.
    pub action: Option<ApprovalAction>,
    /// Why, shown in the log.
    pub reason: Option<String>,
    /// For command approvals: `once` (default) or `task`.
    #[serde(default)]
    pub scope: ApprovalScope,
}

/// `POST /api/v1/tasks/{id}/approve`: decides the task's single pending
/// approval; 409 listing them when there are several.
#[utoipa::path(
    post,
    path = "/tasks/{id}/approve",
    tag = "approvals",
    params(crate::openapi::TaskPath),
    request_body = TaskDecisionBody,
    responses((status = 200, description = "what the approval did", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["approve"]))
)]
pub async fn approve_task(
    state: State<AppState>,
    caller: Caller,
    path: Path<String>,
    body: ApiJson<TaskDecisionBody>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    decide_task(state, caller, path, body, Decision::Approve).await
}

/// `POST /api/v1/tasks/{id}/deny`.
#[utoipa::path(
    post,
    path = "/tasks/{id}/deny",
    tag = "approvals",
    params(crate::openapi::TaskPath),
    request_body = TaskDecisionBody,
    responses((status = 200, description = "what the denial did", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["approve"]))
)]
pub async fn deny_task(
    state: State<AppState>,
    caller: Caller,
    path: Path<String>,
    body: ApiJson<TaskDecisionBody>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    decide_task(state, caller, path, body, Decision::Deny).await
}

async fn decide_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TaskDecisionBody>,
    decision: Decision,
) -> Result<Json<DecisionOutcome>, ApiError> {
    caller.require(Scope::Approve)?;
    let id = task_id(&state, &id).await?;
    let outcome = state
        .orchestrator
        .decide_for_task(
            &id,
            body.action,
            decision,
            body.scope,
            &caller.name,
            body.reason,
        )
        .await?;
    Ok(Json(outcome))
}

/// `POST /api/v1/tasks/{id}/merge`: asks for merging a committed task's
/// branch into the base branch (decided like any approval).
#[utoipa::path(
    post,
    path = "/tasks/{id}/merge",
    tag = "approvals",
    params(crate::openapi::TaskPath),
    responses((status = 200, description = "the merge approval, pending", body = pushpals_core::Approval), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn request_merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<pushpals_core::Approval>, ApiError> {
    caller.require(Scope::Operate)?;
    let id = task_id(&state, &id).await?;
    Ok(Json(state.orchestrator.request_merge(&id).await?))
}
