//! A server state on a temporary repository and store, and calls to its
//! router without a socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pushpals_orchestrator::{Orchestrator, Settings};
use pushpals_sandbox::HostRunner;
use pushpals_server::{AppState, ensure_admin_token, router};
use pushpals_store::{Durability, Store};
use pushpals_test_support::TempRepo;
use pushpals_workspace::Repo;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// A server state with its admin token.
pub(crate) struct Api {
    _repo: TempRepo,
    pub(crate) data: tempfile::TempDir,
    pub(crate) state: AppState,
    pub(crate) token: String,
}

/// A fresh server state.
pub(crate) async fn api() -> Api {
    api_with("").await
}

/// A fresh server state with these settings (`config.toml` text).
pub(crate) async fn api_with(settings: &str) -> Api {
    api_on(TempRepo::new(), settings).await
}

/// A fresh server state on `repo`.
pub(crate) async fn api_on(repo: TempRepo, settings: &str) -> Api {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path(), Durability::Normal).unwrap();
    ensure_admin_token(&store, data.path()).await.unwrap();
    let token = std::fs::read_to_string(data.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let git = Repo::open(&repo.path).await.unwrap();
    let orchestrator = Orchestrator::start(
        store,
        Some(git),
        Arc::new(HostRunner),
        Settings::from_toml(settings).unwrap(),
        pushpals_policy::Policy::builtin().unwrap(),
        data.path(),
    )
    .await
    .unwrap();
    Api {
        _repo: repo,
        data,
        state: AppState::new(orchestrator),
        token,
    }
}

impl Api {
    /// Calls the router; returns the status and the JSON body.
    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Calls the router with a raw body (`application/octet-stream`);
    /// returns the status and the body's bytes.
    pub(crate) async fn call_bytes(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// Calls the router with the admin token.
    pub(crate) async fn authed(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.token.clone();
        self.call(method, uri, Some(&token), body).await
    }

    /// A GET with the admin token; the body as text.
    pub(crate) async fn authed_text(&self, method: &str, uri: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A GET with the admin token: status, headers and body bytes.
    pub(crate) async fn authed_raw(
        &self,
        uri: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let request = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, headers, bytes.to_vec())
    }

    /// A POST with the admin token and a body without a content type.
    pub(crate) async fn plain_post(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A GET without a token: status, headers and body text.
    pub(crate) async fn raw(&self, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A public POST as if from `peer`, with extra headers.
    pub(crate) async fn post_from(
        &self,
        peer: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> StatusCode {
        use axum::extract::connect_info::MockConnectInfo;
        use pushpals_server::client_addr::PeerAddr;
        let mut request = Request::builder()
            .method("POST")
            .uri(uri)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let app =
            router(self.state.clone()).layer(MockConnectInfo(PeerAddr(peer.parse().unwrap())));
        app.oneshot(request).await.unwrap().status()
    }
}
