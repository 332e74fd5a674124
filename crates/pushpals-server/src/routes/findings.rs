//! The scanner: scan now, list findings, dismiss one.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiPath as Path;
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_orchestrator::ScanReport;
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/v1/scan?changed=true|false` options.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScanOptions {
    /// Only what changed since the last scan.
    #[serde(default)]
    pub changed: bool,
    /// The repository to scan (may be left out when there is one).
    pub repo: Option<String>,
}

/// `POST /api/v1/scan`: scans HEAD now (everything, or with
/// `?changed=true` only what changed since the last scan).
#[utoipa::path(
    post,
    path = "/scan",
    tag = "findings",
    params(ScanOptions),
    responses((status = 200, description = "the scan report", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(options): ApiQuery<ScanOptions>,
) -> Result<Json<ScanReport>, ApiError> {
    caller.require(Scope::Operate)?;
    let repo = options.repo.as_deref();
    let report = if options.changed {
        state
            .orchestrator
            .scan_changes(repo, caller.actor())
            .await?
    } else {
        state.orchestrator.scan(repo, caller.actor()).await?
    };
    Ok(Json(report))
}

/// `GET /api/v1/findings` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this state (`open` unless given; `all` for every state).
    pub state: Option<String>,
    /// Only this repository's.
    pub repo: Option<String>,
}

/// `GET /api/v1/findings`.
#[utoipa::path(
    get,
    path = "/findings",
    tag = "findings",
    params(Filter),
    responses((status = 200, description = "findings", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<Filter>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let wanted = match filter.state.as_deref() {
        None => Some("open".to_owned()),
        Some("all") => None,
        Some(s @ ("open" | "fixed" | "dismissed")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "state {other:?} is not known: use open, fixed, dismissed or all"
            )));
        }
    };
    let findings = state
        .store()
        .findings(pushpals_store::findings::FindingFilter {
            repo: filter.repo,
            kind: filter.kind,
            state: wanted,
        })
        .await?;
    Ok(Json(json!({ "findings": findings })))
}

/// `POST /api/v1/findings/{fingerprint}/dismiss` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismiss {
    /// Why (kept in the audit log).
    pub reason: String,
    /// The finding's repository, when its fingerprint is in several.
    #[serde(default)]
    pub repo: Option<String>,
}

/// `POST /api/v1/findings/{fingerprint}/dismiss`.
#[utoipa::path(
    post,
    path = "/findings/{fingerprint}/dismiss",
    tag = "findings",
    params(("fingerprint" = String, Path)),
    request_body = Dismiss,
    responses((status = 200, description = "the dismissed finding", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn dismiss(
    State(state): State<AppState>,
    caller: Caller,
    Path(fingerprint): Path<String>,
    ApiJson(body): ApiJson<Dismiss>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Operate)?;
    state
        .orchestrator
        .dismiss_finding(
            body.repo.as_deref(),
            &fingerprint,
            &body.reason,
            caller.actor(),
        )
        .await?;
    Ok(Json(json!({ "dismissed": fingerprint })))
}

/// `POST /api/v1/proposals` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Propose {
    /// Fingerprints of open findings of one kind.
    pub findings: Vec<String>,
    /// Their repository, when a fingerprint is in several.
    #[serde(default)]
    pub repo: Option<String>,
}

/// `POST /api/v1/proposals`: bundles findings into an agent task. 201.
#[utoipa::path(
    post,
    path = "/proposals",
    tag = "findings",
    request_body = Propose,
    responses((status = 201, description = "the proposal as an agent task", body = pushpals_core::Task), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn propose(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Propose>,
) -> Result<(axum::http::StatusCode, Json<pushpals_core::Task>), ApiError> {
    caller.require(Scope::Operate)?;
    let task = state
        .orchestrator
        .propose(body.repo.as_deref(), &body.findings, caller.actor())
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(task)))
}
