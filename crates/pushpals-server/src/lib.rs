//! The HTTP side of Push Pals: the JSON API under `/api/v1/`, the live event
//! stream, and bearer-token auth.
//!
//! Handlers are thin: they check the caller's scope, call the orchestrator
//! or the store, and map errors to a status with a `{ "code", "message" }`
//! body ([`ApiError`]). Every route is listed in [`router`]. Only
//! `/healthz` is public.

#![forbid(unsafe_code)]

pub mod acme;
mod assets;
mod auth;
pub mod client_addr;
pub mod connections;
mod error;
mod json;
pub mod metrics;
pub mod notify;
pub mod openapi;
mod routes;
pub use routes::settings::reload_from_file as reload_settings;
pub mod sse_frames;
mod state;
pub mod tls;
mod trace;
pub mod webpush;

pub use auth::{Caller, Scope, ensure_admin_token, hash_token};
pub use error::ApiError;
pub use state::AppState;

use axum::Router;
use axum::routing::get;
use openapi::{ApiDoc, RouteScopes};
use std::future::Future;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The token-guarded API under `/api/v1`, with its description: each
/// handler's `#[utoipa::path]` names its method, path and scope.
fn guarded_api() -> OpenApiRouter<AppState> {
    use routes::{
        approvals, audit, chat, findings, grants, metrics as scrape, pairing, policy, push,
        retention, status, stream, tasks,
    };
    OpenApiRouter::new()
        .routes(routes!(status::status))
        .routes(routes!(chat::chat, chat::history))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::show, tasks::remove))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::continue_task))
        .routes(routes!(tasks::diff))
        .routes(routes!(routes::artifacts::list))
        .routes(routes!(routes::artifacts::file))
        .routes(routes!(tasks::events))
        .routes(routes!(tasks::false_positive))
        .routes(routes!(approvals::approve_task))
        .routes(routes!(approvals::deny_task))
        .routes(routes!(approvals::request_merge))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::decide))
        .routes(routes!(routes::repos::list, routes::repos::add))
        .routes(routes!(routes::repos::remove))
        .routes(routes!(grants::list))
        .routes(routes!(grants::give, grants::revoke))
        .routes(routes!(routes::settings::reload))
        .routes(routes!(routes::check_trials::try_checks))
        .routes(routes!(policy::rules))
        .routes(routes!(retention::gc))
        .routes(routes!(retention::du))
        .routes(routes!(findings::scan))
        .routes(routes!(findings::list))
        .routes(routes!(findings::propose))
        .routes(routes!(findings::dismiss))
        .routes(routes!(scrape::scrape))
        .routes(routes!(push::key))
        .routes(routes!(push::subscribe, push::unsubscribe, push::list))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::export))
        .routes(routes!(audit::events))
        .routes(routes!(audit::blob))
        .routes(routes!(stream::events))
        .routes(routes!(pairing::create))
        .routes(routes!(pairing::list))
        .routes(routes!(pairing::revoke))
        .routes(routes!(routes::workers::add, routes::workers::list))
        .routes(routes!(routes::workers::heartbeat))
        .routes(routes!(routes::workers::revoke))
        .routes(routes!(routes::worker_runs::next))
        .routes(routes!(routes::worker_runs::base))
        .routes(routes!(routes::worker_runs::output))
        .routes(routes!(routes::worker_runs::result))
        .routes(routes!(routes::worker_runs::diff))
        .routes(routes!(routes::worker_reports::warm))
        .routes(routes!(routes::worker_reports::artifact))
        .routes(routes!(routes::worker_reports::artifacts))
        .routes(routes!(routes::worker_tunnels::network))
        .routes(routes!(routes::worker_tunnels::gateway))
}

/// Routes anyone may call: probes, the description, and redeeming a
/// pairing code (rate-limited).
fn public_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::pairing::redeem))
        .routes(routes!(routes::workers::enrol))
}

/// The whole API description, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, guarded) = guarded_api().split_for_parts();
    let (_, public) = public_api().split_for_parts();
    let (_, probes) = OpenApiRouter::<AppState>::new()
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readiness::readyz))
        .routes(routes!(routes::description))
        .split_for_parts();
    let mut api = ApiDoc::openapi().nest("/api/v1", guarded.merge_from(public));
    api.merge(probes);
    api
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let (guarded, described) = guarded_api().split_for_parts();
    let scopes = std::sync::Arc::new(RouteScopes::from_openapi(&described));
    let guarded = guarded
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            auth::Guard {
                state: state.clone(),
                scopes,
                prefix: "/api/v1",
            },
            auth::require_token,
        ));
    let (public, _) = public_api().split_for_parts();
    let api = public.merge(guarded);
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readiness::readyz))
        .route("/api/v1/openapi.json", get(routes::description))
        .route("/", get(routes::companion::index))
        .route("/ca.pem", get(routes::companion::ca_certificate))
        .route("/{file}", get(routes::companion::file))
        .route("/views/{file}", get(routes::companion::view_file))
        .nest("/api/v1", api)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trace::request_span,
        ))
        .layer(axum::middleware::from_fn_with_state(
            connections::ConnectionLimits::from_settings(&state.orchestrator.settings().server)
                .body_timeout,
            connections::body_deadline,
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
    let limits =
        connections::ConnectionLimits::from_settings(&state.orchestrator.settings().server);
    let app = router(state);
    connections::serve_bounded(
        listener,
        app,
        limits,
        async move {
            shutdown.await;
            let _ = closing.send(true);
        },
        std::time::Duration::from_secs(10),
    )
    .await?;
    notifier.abort();
    counting.abort();
    Ok(())
}
