//! Web Push subscriptions of the companion's browsers.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use crate::webpush::check_subscription;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pushpals_store::PushSubscription;
use serde::Deserialize;
use serde_json::{Value, json};

fn vapid(state: &AppState) -> Result<&crate::webpush::Vapid, ApiError> {
    state.vapid.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "push_unavailable",
            "Web Push is not set up on this server",
        )
    })
}

/// `GET /api/v1/push/key`: the key browsers subscribe with.
#[utoipa::path(
    get,
    path = "/push/key",
    tag = "push",
    responses((status = 200, description = "the server's Web Push key", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn key(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(json!({ "public_key": vapid(&state)?.public_key() })))
}

/// The keys of a subscription, as the browser's `PushSubscription.toJSON()`
/// gives them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// The browser's P-256 public key.
    pub p256dh: String,
    /// The browser's auth secret.
    pub auth: String,
}

/// `POST /api/v1/push/subscriptions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Subscribe {
    /// The push service's URL.
    pub endpoint: String,
    /// The keys.
    pub keys: Keys,
}

/// `POST /api/v1/push/subscriptions`: this browser wants notifications.
#[utoipa::path(
    post,
    path = "/push/subscriptions",
    tag = "push",
    request_body = Subscribe,
    responses((status = 201, description = "subscribed", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Subscribe>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Read)?;
    vapid(&state)?;
    check_subscription(&body.endpoint, &body.keys.p256dh, &body.keys.auth)
        .map_err(ApiError::bad_request)?;
    let subscription = PushSubscription {
        token_name: caller.name.clone(),
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
    };
    let answer = json!({
        "subscribed": true,
        "token_name": subscription.token_name,
        "push_service": pushpals_store::push_service(&subscription.endpoint),
    });
    state
        .store()
        .write(move |tx| tx.save_push_subscription(&subscription))
        .await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /api/v1/push/subscriptions`: the browsers that get notifications
/// (the caller's own; every device's for an admin), by device and push
/// service, never the endpoint itself.
#[utoipa::path(
    get,
    path = "/push/subscriptions",
    tag = "push",
    responses((status = 200, description = "the subscriptions", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let everyone = caller.require(Scope::Admin).is_ok();
    let subscriptions: Vec<Value> = state
        .store()
        .push_subscriptions()
        .await?
        .into_iter()
        .filter(|s| everyone || s.token_name == caller.name)
        .map(|s| {
            json!({
                "token_name": s.token_name,
                "push_service": pushpals_store::push_service(&s.endpoint),
            })
        })
        .collect();
    Ok(Json(json!({ "subscriptions": subscriptions })))
}

/// `DELETE /api/v1/push/subscriptions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    /// The push service's URL.
    pub endpoint: String,
}

/// `DELETE /api/v1/push/subscriptions`: no more notifications here.
#[utoipa::path(
    delete,
    path = "/push/subscriptions",
    tag = "push",
    request_body = Unsubscribe,
    responses((status = 200, description = "unsubscribed", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Unsubscribe>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let endpoint = body.endpoint;
    let removed = state
        .store()
        .write(move |tx| tx.delete_push_subscription(&endpoint))
        .await?;
    if !removed {
        return Err(ApiError::not_found("no such push subscription"));
    }
    Ok(Json(json!({ "removed": true })))
}
