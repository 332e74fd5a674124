//! The HTTP side of Push Pals: the JSON API under `/api/v1/`, the live event
//! stream, and bearer-token auth.
//!
//! Handlers are thin: they check the caller's scope, call the orchestrator
//! or the store, and map errors to a status with a `{ "code", "message" }`
//! body ([`ApiError`]). Every route is listed in [`router`]. Only
//! `/healthz` is public.

#![forbid(unsafe_code)]

mod auth;
pub mod client_addr;
mod error;
mod json;
pub mod metrics;
pub mod notify;
mod routes;
mod state;
pub mod tls;
mod trace;
pub mod webpush;

pub use auth::{Caller, Scope, ensure_admin_token, hash_token};
pub use error::ApiError;
pub use state::AppState;

use axum::Router;
use axum::routing::{get, post};
use std::future::Future;

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/status", get(routes::status::status))
        .route("/chat", post(routes::chat::chat))
        .route(
            "/tasks",
            get(routes::tasks::list).post(routes::tasks::create),
        )
        .route(
            "/tasks/{id}",
            get(routes::tasks::show).delete(routes::tasks::remove),
        )
        .route("/tasks/{id}/cancel", post(routes::tasks::cancel))
        .route("/tasks/{id}/continue", post(routes::tasks::continue_task))
        .route("/tasks/{id}/diff", get(routes::tasks::diff))
        .route("/tasks/{id}/events", get(routes::tasks::events))
        .route("/tasks/{id}/approve", post(routes::approvals::approve_task))
        .route(
            "/tasks/{id}/secrets/{fingerprint}/false-positive",
            post(routes::tasks::false_positive),
        )
        .route("/tasks/{id}/deny", post(routes::approvals::deny_task))
        .route("/tasks/{id}/merge", post(routes::approvals::request_merge))
        .route("/approvals", get(routes::approvals::list))
        .route("/approvals/{id}/decide", post(routes::approvals::decide))
        .route("/grants", get(routes::grants::list))
        .route("/policy", get(routes::policy::rules))
        .route("/gc", post(routes::retention::gc))
        .route("/scan", post(routes::findings::scan))
        .route("/findings", get(routes::findings::list))
        .route("/proposals", post(routes::findings::propose))
        .route(
            "/findings/{fingerprint}/dismiss",
            post(routes::findings::dismiss),
        )
        .route("/du", get(routes::retention::du))
        .route("/metrics", get(routes::metrics::scrape))
        .route("/push/key", get(routes::push::key))
        .route(
            "/push/subscriptions",
            post(routes::push::subscribe).delete(routes::push::unsubscribe),
        )
        .route(
            "/grants/{kind}",
            axum::routing::put(routes::grants::give).delete(routes::grants::revoke),
        )
        .route("/audit/verify", get(routes::audit::verify))
        .route("/audit/export", get(routes::audit::export))
        .route("/blobs/{hash}", get(routes::audit::blob))
        .route("/events", get(routes::stream::events))
        .route("/pairing", post(routes::pairing::create))
        .route("/devices", get(routes::pairing::list))
        .route(
            "/devices/{id}",
            axum::routing::delete(routes::pairing::revoke),
        )
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // Redeeming a pairing code is the one public API call (rate-limited).
    let api = Router::new()
        .route("/pair", post(routes::pairing::redeem))
        .merge(api);
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readiness::readyz))
        .route("/", get(routes::companion::index))
        .route("/ca.pem", get(routes::companion::ca_certificate))
        .route("/{file}", get(routes::companion::file))
        .route("/views/{file}", get(routes::companion::view_file))
        .nest("/api/v1", api)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trace::request_span,
        ))
        .with_state(state)
}

/// Serves the separate metrics address: `/metrics` without a token, and
/// nothing else.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(routes::metrics::scrape_unauthenticated))
        .with_state(state);
    axum::serve(listener, app).await
}

/// Serves `router(state)` on `listener` until `shutdown` resolves; open
/// event streams are closed at shutdown.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    for<'a> client_addr::PeerAddr:
        axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let closing = state.closing.clone();
    let notifier = tokio::spawn(notify::run_notifier(
        state.store().clone(),
        state.orchestrator.settings().notify.clone(),
        state.vapid.as_deref().cloned(),
    ));
    state
        .store()
        .observe_writes(state.metrics.clone() as std::sync::Arc<dyn pushpals_store::WriteObserver>);
    let counting = tokio::spawn(metrics::follow_events(
        state.store().clone(),
        state.metrics.clone(),
    ));
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<client_addr::PeerAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = closing.send(true);
    })
    .await?;
    notifier.abort();
    counting.abort();
    Ok(())
}
