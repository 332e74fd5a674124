//! The API through the router (no socket): auth, error shapes, decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pushpals_orchestrator::{Orchestrator, Settings};
use pushpals_sandbox::HostRunner;
use pushpals_server::{AppState, ensure_admin_token, router};
use pushpals_store::{Durability, Store};
use pushpals_test_support::TempRepo;
use pushpals_workspace::Repo;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Api {
    _repo: TempRepo,
    _data: tempfile::TempDir,
    state: AppState,
    token: String,
}

async fn api() -> Api {
    let repo = TempRepo::new();
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
        git,
        Arc::new(HostRunner),
        Settings::default(),
        pushpals_policy::Policy::builtin().unwrap(),
        data.path(),
    )
    .await
    .unwrap();
    Api {
        _repo: repo,
        _data: data,
        state: AppState::new(orchestrator),
        token,
    }
}

impl Api {
    async fn call(
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

    async fn authed(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let token = self.token.clone();
        self.call(method, uri, Some(&token), body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_healthz_is_public() {
    let api = api().await;
    assert_eq!(
        api.call("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let (status, body) = api.call("GET", "/api/v1/tasks", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
    assert!(body["message"].as_str().unwrap().contains("bearer token"));
    let (status, _) = api
        .call("GET", "/api/v1/tasks", Some("pp_wrong"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api.call("GET", "/api/v1/nothing-here", None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "unknown paths do not leak without a token"
    );
    let (status, body) = api.authed("GET", "/api/v1/nothing-here", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_scope_gets_403() {
    let api = api().await;
    let hash = pushpals_server::hash_token("pp_reader");
    api.state
        .store()
        .write(move |tx| tx.insert_token("phone", &hash, "read"))
        .await
        .unwrap();
    assert_eq!(
        api.call("GET", "/api/v1/tasks", Some("pp_reader"), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/tasks",
            Some("pp_reader"),
            Some(json!({"title": "x", "command": "true"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("operate"));

    // Approving the command along with creating the task needs `approve`.
    let hash = pushpals_server::hash_token("pp_operator");
    api.state
        .store()
        .write(move |tx| tx.insert_token("laptop", &hash, "read operate"))
        .await
        .unwrap();
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/tasks",
            Some("pp_operator"),
            Some(json!({"title": "x", "command": "frobnicate", "approve_command": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("approve"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_json_body() {
    let api = api().await;
    let (status, body) = api.authed("GET", "/api/v1/tasks/unknown1", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert!(body["message"].as_str().unwrap().contains("unknown1"));

    let (status, body) = api
        .authed("GET", "/api/v1/tasks/..%2F..%2Fetc/diff", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = api
        .authed("POST", "/api/v1/tasks", Some(json!({"titel": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("titel"),
        "{body}"
    );

    let (status, body) = api
        .authed("POST", "/api/v1/tasks", Some(json!({"title": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("command"),
        "{body}"
    );

    let (status, _) = api
        .authed(
            "POST",
            "/api/v1/approvals/abc/decide",
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .authed(
            "POST",
            "/api/v1/approvals/77/decide",
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.authed("GET", "/api/v1/blobs/zz", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deciding_twice_is_409_and_an_ended_task_cannot_be_cancelled() {
    let api = api().await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({"title": "Edit", "command": "echo x >> README.md"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = task["id"].as_str().unwrap().to_owned();
    let mut approval_id = None;
    for _ in 0..500 {
        let (_, view) = api
            .authed("GET", &format!("/api/v1/tasks/{id}"), None)
            .await;
        if let Some(approval) = view["approvals"].as_array().and_then(|a| a.first()) {
            approval_id = approval["id"].as_i64();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let approval_id = approval_id.expect("an approval was requested");
    let uri = format!("/api/v1/approvals/{approval_id}/decide");
    let (status, outcome) = api
        .authed(
            "POST",
            &uri,
            Some(json!({"decision": "deny", "reason": "no"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["task"]["state"], "rejected");
    let (status, body) = api
        .authed("POST", &uri, Some(json!({"decision": "approve"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["message"],
        format!("approval {approval_id} was already denied")
    );

    let (status, body) = api
        .authed("POST", &format!("/api/v1/tasks/{id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = api
        .authed(
            "POST",
            &format!("/api/v1/tasks/{id}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no pending approval")
    );
}
