//! Pairing companion devices: one-time codes (admin), their redemption
//! (public, rate-limited), and the devices' tokens (list, revoke).

use crate::auth::{Caller, Scope, hash_token, new_token};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiPath as Path;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pushpals_core::payload::{DevicePaired, PairingCreated, TokenRevoked};
use pushpals_core::{Actor, NewEvent};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Characters of a pairing code: no 0/O, 1/I/L look-alikes.
const CODE_ALPHABET: &[u8; 30] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
/// Characters in a code.
const CODE_LENGTH: usize = 8;
/// How long a code lives unless asked otherwise.
const DEFAULT_TTL: u64 = 300;
/// The longest a code may live.
const MAX_TTL: u64 = 900;
/// Redemption attempts allowed per window, for everyone together.
const ATTEMPTS_PER_WINDOW: usize = 10;
/// The rate limit's window.
const WINDOW: Duration = Duration::from_secs(60);

/// Attempts allowed per window from everyone together.
const ALL_ATTEMPTS_PER_WINDOW: usize = 60;

/// Recent redemption attempts, for the rate limit: per client address, and
/// for everyone together.
#[derive(Debug, Default)]
pub struct PairingLimiter {
    all: VecDeque<Instant>,
    by_client: HashMap<Option<IpAddr>, VecDeque<Instant>>,
}

fn admit_into(window: &mut VecDeque<Instant>, now: Instant, limit: usize) -> bool {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        window.pop_front();
    }
    if window.len() >= limit {
        return false;
    }
    window.push_back(now);
    true
}

impl PairingLimiter {
    /// Counts an attempt from `client`; false when its window or the
    /// shared one is full.
    fn admit(&mut self, client: Option<IpAddr>, now: Instant) -> bool {
        self.by_client.retain(|_, window| {
            window
                .back()
                .is_some_and(|t| now.duration_since(*t) < WINDOW)
        });
        let mine = self.by_client.entry(client).or_default();
        if !admit_into(mine, now, ATTEMPTS_PER_WINDOW) {
            return false;
        }
        admit_into(&mut self.all, now, ALL_ATTEMPTS_PER_WINDOW)
    }
}

/// Counts an attempt to redeem a one-time code (a pairing code, a worker's
/// enrolment token) from the request's client: 429 when it or everyone
/// together tried too often this minute. `what` names the attempts.
pub(crate) fn admit_one_time_code(
    state: &AppState,
    peer: Option<&axum::extract::ConnectInfo<crate::client_addr::PeerAddr>>,
    headers: &axum::http::HeaderMap,
    what: &str,
) -> Result<(), ApiError> {
    let trusted = &state.orchestrator.settings().server.trusted_proxies;
    let client = crate::client_addr::client_ip(peer, headers, trusted);
    let admitted = state
        .pairing
        .lock()
        .map(|mut limiter| limiter.admit(client, Instant::now()))
        .unwrap_or(false);
    if admitted {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many {what} attempts; wait a minute and try again"),
        ))
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A code as typed: case and separators do not matter.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What a device may do: `read`, or `approve` (read, operate, approve).
fn scopes_for(name: &str) -> Result<&'static str, ApiError> {
    match name {
        "read" => Ok("read"),
        "approve" => Ok("read operate approve"),
        other => Err(ApiError::bad_request(format!(
            "scope {other:?} is not offered to devices: use \"read\" or \"approve\""
        ))),
    }
}

/// `POST /api/v1/pairing` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPairing {
    /// `read` or `approve`.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Seconds the code lives (default 300, at most 900).
    pub ttl_secs: Option<u64>,
}

fn default_scope() -> String {
    "read".into()
}

/// `POST /api/v1/pairing`: a one-time code for a new device (admin).
#[utoipa::path(
    post,
    path = "/pairing",
    tag = "pairing",
    request_body = NewPairing,
    responses((status = 201, description = "a one-time code", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewPairing>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Admin)?;
    let scopes = scopes_for(&body.scope)?;
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL);
    if ttl == 0 || ttl > MAX_TTL {
        return Err(ApiError::bad_request(format!(
            "ttl_secs must be 1 to {MAX_TTL}"
        )));
    }
    let mut bytes = [0u8; CODE_LENGTH];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let code: String = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect();
    let expires_at = unix_now().saturating_add(i64::try_from(ttl).unwrap_or(0));
    let code_hash = hash_token(&code);
    let scope_name = body.scope.clone();
    let actor = caller.actor();
    state
        .store()
        .write(move |tx| {
            tx.insert_pairing_code(&code_hash, scopes, expires_at)?;
            let created = PairingCreated {
                scope: scope_name,
                expires_at,
            };
            tx.append(NewEvent::typed(None, actor, &created)?)
        })
        .await?;
    let shown = format!("{}-{}", &code[..4], &code[4..]);
    let ca_fingerprint = state
        .orchestrator
        .settings()
        .tls
        .as_ref()
        .and_then(|tls| tls.ca.as_deref())
        .and_then(crate::tls::fingerprint);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "code": shown,
            "scope": body.scope,
            "expires_at": expires_at,
            "path": format!("/#pair={shown}"),
            "ca_fingerprint": ca_fingerprint,
        })),
    ))
}

/// `POST /api/v1/pair` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// The code shown by `pushpals pair`.
    pub code: String,
    /// A name for the device (shown in the device list).
    pub device: String,
}

/// `POST /api/v1/pair`: trades a pairing code for a device token. Public,
/// rate-limited; a code works once and only until it expires.
#[utoipa::path(
    post,
    path = "/pair",
    tag = "pairing",
    request_body = Redeem,
    responses((status = 201, description = "the device token, shown once", body = Object), crate::openapi::ErrorResponses),
    security(())
)]
pub async fn redeem(
    State(state): State<AppState>,
    peer: Result<
        axum::extract::ConnectInfo<crate::client_addr::PeerAddr>,
        axum::extract::rejection::ExtensionRejection,
    >,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Redeem>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admit_one_time_code(&state, peer.as_ref().ok(), &headers, "pairing")?;
    let device = body.device.trim().to_owned();
    if device.is_empty() || device.len() > 64 || device.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name the device in 1 to 64 printable characters",
        ));
    }
    let code_hash = hash_token(&normalize(&body.code));
    let (token, token_hash) = new_token().map_err(ApiError::internal)?;
    let name = format!("device:{device}");
    let now = unix_now();
    let paired = state
        .store()
        .write(move |tx| {
            let Some(scopes) = tx.redeem_pairing_code(&code_hash, now)? else {
                return Ok(None);
            };
            let id = tx.insert_token(&name, &token_hash, &scopes)?;
            let paired = DevicePaired {
                device: name.clone(),
                token_id: id,
                scopes: scopes.clone(),
            };
            tx.append(NewEvent::typed(None, Actor::User(name.clone()), &paired)?)?;
            Ok(Some((scopes, name)))
        })
        .await?;
    let Some((scopes, name)) = paired else {
        return Err(ApiError::unauthorized(
            "the pairing code is not valid: it may be mistyped, used already or expired; run `pushpals pair` for a new one",
        ));
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "scopes": scopes, "name": name })),
    ))
}

/// `GET /api/v1/devices`: every token, without secrets (admin).
#[utoipa::path(
    get,
    path = "/devices",
    tag = "pairing",
    responses((status = 200, description = "tokens without their hashes", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(
        json!({ "devices": state.store().token_list().await? }),
    ))
}

/// `DELETE /api/v1/devices/{id}`: revokes a device's token (admin).
#[utoipa::path(
    delete,
    path = "/devices/{id}",
    tag = "pairing",
    params(("id" = i64, Path, description = "a token id")),
    responses((status = 200, description = "the revoked token", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let tokens = state.store().token_list().await?;
    let Some(token) = tokens.into_iter().find(|t| t.id == id) else {
        return Err(ApiError::not_found(format!("no device token {id}")));
    };
    if token.name == "admin" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the admin token is not revoked here: delete <data-dir>/admin.token and restart the server to rotate it",
        ));
    }
    let actor = caller.actor();
    let name = token.name.clone();
    let revoked = state
        .store()
        .write(move |tx| {
            // A worker's token goes with its worker, so the list of
            // workers never shows a revoked one as enrolled.
            if let Some(worker) = name.strip_prefix("worker:") {
                return tx.revoke_worker(worker, actor);
            }
            let revoked = tx.revoke_token(id)?;
            if revoked {
                let revoked = TokenRevoked { token_id: id, name };
                tx.append(NewEvent::typed(None, actor, &revoked)?)?;
            }
            Ok(revoked)
        })
        .await?;
    if !revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("device token {id} was already revoked"),
        ));
    }
    Ok(Json(json!({ "revoked": id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typed_loosely_and_attempts_are_limited() {
        assert_eq!(normalize("abcd-efgh "), "ABCDEFGH");
        let mut limiter = PairingLimiter::default();
        let start = Instant::now();
        let one = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..ATTEMPTS_PER_WINDOW {
            assert!(limiter.admit(one, start));
        }
        assert!(!limiter.admit(one, start));
        assert!(
            limiter.admit(Some(IpAddr::from([10, 0, 0, 2])), start),
            "others keep theirs"
        );
        assert!(limiter.admit(one, start + WINDOW));
        let mut shared = PairingLimiter::default();
        let admitted = (0..100u8)
            .filter(|i| shared.admit(Some(IpAddr::from([10, 1, 0, *i])), start))
            .count();
        assert_eq!(
            admitted, ALL_ATTEMPTS_PER_WINDOW,
            "many addresses share one ceiling"
        );
        assert!(scopes_for("admin").is_err());
    }
}
