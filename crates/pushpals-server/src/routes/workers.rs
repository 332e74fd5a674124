//! Worker hosts: an admin names one with its labels and gets a one-time
//! enrolment token; the worker trades it (public, rate-limited with the
//! pairing codes) for a token of the `worker` scope, which can only report
//! and take work (`worker_runs`); admins list and revoke them.

use crate::auth::{Caller, Scope, hash_token, new_token};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiPath as Path;
use crate::routes::pairing::{admit_one_time_code, unix_now};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pushpals_orchestrator::valid_repo_name;
use pushpals_store::{NewWorker, WorkerReport};
use serde::Deserialize;
use serde_json::{Value, json};

/// How long an enrolment token lives unless asked otherwise.
const DEFAULT_TTL: u64 = 3600;
/// The longest an enrolment token may live.
const MAX_TTL: u64 = 7 * 24 * 3600;
/// The most labels a worker offers.
const MAX_LABELS: usize = 16;

/// How far a worker's clock may be from the server's.
const MOST_CLOCK_SKEW_SECS: i64 = 300;

/// Refuses a worker whose clock is far from the server's (its events'
/// times and its leases would be wrong), saying by how much.
fn clock_agrees(time: &str) -> Result<(), ApiError> {
    let theirs = pushpals_core::timestamp::parse(time)
        .map_err(|e| ApiError::bad_request(format!("time must be an RFC 3339 time ({e})")))?;
    let off = (time::OffsetDateTime::now_utc() - theirs).whole_seconds();
    if off.abs() > MOST_CLOCK_SKEW_SECS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "clock_off",
            format!(
                "this worker's clock is {} {} the server's: set it right (NTP) and try again",
                pushpals_core::timestamp::duration_words(off.unsigned_abs()),
                if off > 0 { "behind" } else { "ahead of" }
            ),
        ));
    }
    Ok(())
}

/// This build's version, which a worker must share (major and minor).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `POST /api/v1/workers` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkerRequest {
    /// Its name (letters, digits, `.`, `_`, `-`; 1 to 64).
    pub name: String,
    /// What it offers, matched with what tasks need (`cargo`, `node`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Seconds the enrolment token lives (default an hour, at most a week).
    pub ttl_secs: Option<u64>,
}

/// `POST /api/v1/workers/enrol` and `/workers/heartbeat` bodies: what the
/// worker says of itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerSays {
    /// The enrolment token (`enrol` only).
    #[serde(default)]
    pub token: Option<String>,
    /// Its cores.
    pub cores: u32,
    /// Its Push Pals version.
    pub version: String,
    /// Its clock (RFC 3339), compared with the server's.
    pub time: String,
}

use pushpals_orchestrator::valid_label;

/// The major and minor of a version (`0.1.3` → `0.1`).
fn series(version: &str) -> &str {
    match version.match_indices('.').nth(1) {
        Some((at, _)) => &version[..at],
        None => version,
    }
}

/// Refuses a worker of another series, naming both versions.
fn compatible(version: &str) -> Result<(), ApiError> {
    if series(version) == series(VERSION) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "incompatible_version",
            format!(
                "this worker runs Push Pals {version} and the server {VERSION}: install the \
                 server's version on the worker"
            ),
        ))
    }
}

/// `POST /api/v1/workers`: names a worker and returns its one-time
/// enrolment token (admin).
#[utoipa::path(
    post,
    path = "/workers",
    tag = "workers",
    request_body = NewWorkerRequest,
    responses((status = 201, description = "the worker and its enrolment token, shown once", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWorkerRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Admin)?;
    if !valid_repo_name(&body.name) {
        return Err(ApiError::bad_request(
            "name the worker in 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`",
        ));
    }
    if body.labels.len() > MAX_LABELS || !body.labels.iter().all(|l| valid_label(l)) {
        return Err(ApiError::bad_request(format!(
            "labels are at most {MAX_LABELS} words of 1 to 32 lowercase letters, digits, `.`, `_` or `-` (like cargo, node)"
        )));
    }
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL);
    if ttl == 0 || ttl > MAX_TTL {
        return Err(ApiError::bad_request(format!(
            "ttl_secs must be 1 to {MAX_TTL}"
        )));
    }
    let (token, token_hash) = new_token().map_err(ApiError::internal)?;
    let expires_at = unix_now().saturating_add(i64::try_from(ttl).unwrap_or(0));
    let (name, labels, actor) = (body.name.clone(), body.labels.clone(), caller.actor());
    let worker = state
        .store()
        .write(move |tx| {
            tx.add_worker(
                &NewWorker {
                    name: &name,
                    labels: &labels,
                    enrol_hash: &token_hash,
                    expires_at,
                },
                actor,
            )
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "worker": worker,
            "enrolment_token": token,
            "expires_at": expires_at,
        })),
    ))
}

/// `POST /api/v1/workers/enrol`: trades a one-time enrolment token for the
/// worker's token (scope `worker`). Public, rate-limited; a token works
/// once and only until it expires; a worker of another version is refused.
#[utoipa::path(
    post,
    path = "/workers/enrol",
    tag = "workers",
    request_body = WorkerSays,
    responses((status = 201, description = "the worker's token, shown once", body = Object), crate::openapi::ErrorResponses),
    security(())
)]
pub async fn enrol(
    State(state): State<AppState>,
    peer: Result<
        axum::extract::ConnectInfo<crate::client_addr::PeerAddr>,
        axum::extract::rejection::ExtensionRejection,
    >,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<WorkerSays>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admit_one_time_code(&state, peer.as_ref().ok(), &headers, "enrolment")?;
    compatible(&body.version)?;
    clock_agrees(&body.time)?;
    let enrol_hash = hash_token(body.token.as_deref().unwrap_or_default().trim());
    let (token, token_hash) = new_token().map_err(ApiError::internal)?;
    let now = unix_now();
    let (cores, version) = (body.cores, body.version.clone());
    let enrolled = state
        .store()
        .write(move |tx| {
            tx.enrol_worker(
                &enrol_hash,
                now,
                &token_hash,
                &WorkerReport {
                    cores,
                    version: &version,
                },
            )
        })
        .await?;
    let Some((worker, _)) = enrolled else {
        return Err(ApiError::unauthorized(
            "the enrolment token is not valid: it may be mistyped, used already, expired or \
             revoked; ask for a new one with `pushpals worker token --name NAME`",
        ));
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "worker": worker, "token": token, "server_version": VERSION })),
    ))
}

/// `POST /api/v1/workers/heartbeat`: a worker reports that it is there,
/// with its cores and version (worker).
#[utoipa::path(
    post,
    path = "/workers/heartbeat",
    tag = "workers",
    request_body = WorkerSays,
    responses((status = 200, description = "seen", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["worker"]))
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<WorkerSays>,
) -> Result<Json<Value>, ApiError> {
    let Some(name) = caller.name.strip_prefix("worker:").map(str::to_owned) else {
        return Err(ApiError::bad_request(
            "only a worker reports here, with the token it enrolled with",
        ));
    };
    compatible(&body.version)?;
    clock_agrees(&body.time)?;
    let (cores, version, who) = (body.cores, body.version.clone(), name.clone());
    let seen = state
        .store()
        .write(move |tx| {
            tx.worker_seen(
                &who,
                &WorkerReport {
                    cores,
                    version: &version,
                },
            )
        })
        .await?;
    if !seen {
        return Err(ApiError::not_found(format!(
            "no enrolled worker named {name:?}"
        )));
    }
    state.orchestrator.dispatch().heard_from(&name);
    let labels = state
        .store()
        .workers()
        .await?
        .into_iter()
        .find(|w| w.name == name)
        .map(|w| w.labels)
        .unwrap_or_default();
    Ok(Json(
        json!({ "name": name, "labels": labels, "server_version": VERSION }),
    ))
}

/// `GET /api/v1/workers`: every worker, revoked ones too (read).
#[utoipa::path(
    get,
    path = "/workers",
    tag = "workers",
    responses((status = 200, description = "the workers", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let activity = state.orchestrator.dispatch().activity();
    let workers: Vec<Value> = state
        .store()
        .workers()
        .await?
        .into_iter()
        .map(|worker| {
            let now = activity.iter().find(|a| a.name == worker.name);
            let mut shown = json!(worker);
            shown["running"] = json!(now.map(|a| a.running.clone()).unwrap_or_default());
            shown["runs"] = json!(now.map_or(0, |a| a.runs));
            shown["busy_secs"] = json!(now.map_or(0.0, |a| a.busy_secs));
            shown["agents"] = json!(now.map(|a| a.agents.clone()).unwrap_or_default());
            shown
        })
        .collect();
    Ok(Json(json!({ "workers": workers })))
}

/// `DELETE /api/v1/workers/{name}`: revokes a worker's token (and an
/// unused enrolment token) at once (admin).
#[utoipa::path(
    delete,
    path = "/workers/{name}",
    tag = "workers",
    params(("name" = String, Path, description = "a worker's name")),
    responses((status = 200, description = "revoked", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let (who, actor) = (name.clone(), caller.actor());
    let revoked = state
        .store()
        .write(move |tx| tx.revoke_worker(&who, actor))
        .await?;
    if !revoked {
        return Err(ApiError::not_found(format!(
            "no worker named {name:?} that is not revoked already (`pushpals workers` lists them)"
        )));
    }
    Ok(Json(json!({ "revoked": name })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_of_another_series_is_refused_with_both_versions() {
        assert_eq!(series("0.1.3"), "0.1");
        assert_eq!(series("2"), "2");
        assert!(compatible(VERSION).is_ok());
        let refused = compatible("99.0.0").unwrap_err();
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        let message = refused.message();
        assert!(
            message.contains("99.0.0") && message.contains(VERSION),
            "{message}"
        );
        assert!(valid_label("cargo") && valid_label("gpu-2"));
        assert!(clock_agrees(&pushpals_core::timestamp::now()).is_ok());
        let behind = clock_agrees("2020-01-01T00:00:00Z").unwrap_err();
        assert_eq!(behind.status(), StatusCode::CONFLICT);
        assert!(behind.message().contains("behind"), "{}", behind.message());
        let ahead = clock_agrees("2999-01-01T00:00:00Z").unwrap_err();
        assert!(ahead.message().contains("ahead of"), "{}", ahead.message());
        assert_eq!(
            clock_agrees("yesterday").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert!(!valid_label("Cargo") && !valid_label("") && !valid_label("a b"));
    }
}
