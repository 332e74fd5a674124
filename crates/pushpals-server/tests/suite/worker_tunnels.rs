//! The network connections a command on a worker opens come through the
//! server as upgraded requests, which no longer count against the
//! server's connection cap: they are bounded on their own, per command and
//! in all, so one command cannot hold the server's sockets. An external
//! agent's gateway connections come the same way, only for its command.

use super::support::api_with;
use super::worker_runs::{enrolled, next, state_until};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_a_worker_has_at_most_its_share_of_network_connections_open() {
    let api = api_with("[workers]\nlocal = false\n[network]\nallow = [\"localhost\"]\n").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(pushpals_server::serve(
        listener,
        api.state.clone(),
        std::future::pending(),
    ));
    let token = enrolled(&api, "w1").await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "fetch", "command": "curl -s http://localhost:9/" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    // Network is asked for; granted, the command runs with its tunnel.
    let waiting = state_until(&api, &id, "waiting").await;
    let approval = waiting["approvals"][0]["id"].as_i64().unwrap();
    let (status, _) = api
        .authed(
            "POST",
            &format!("/api/v1/approvals/{approval}/decide"),
            Some(json!({ "decision": "approve" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let run = next(&api, &token, json!({ "task": id, "lease": lease })).await;
    assert_eq!(run["network"], true, "{run}");
    let seq = run["seq"].as_u64().unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let open = || {
        client
            .get(format!(
                "{url}/api/v1/workers/tasks/{id}/network?lease={lease}&seq={seq}"
            ))
            .bearer_auth(&token)
            .header("connection", "upgrade")
            .header("upgrade", "pushpals-tunnel")
            .send()
    };
    // The model gateway is relayed only for an external agent's command,
    // and neither is relayed for a worker not holding the run.
    let relay = |kind: &str, token: &str| {
        client
            .get(format!(
                "{url}/api/v1/workers/tasks/{id}/{kind}?lease={lease}&seq={seq}"
            ))
            .bearer_auth(token)
            .header("connection", "upgrade")
            .header("upgrade", "pushpals-tunnel")
            .send()
    };
    let refused = relay("gateway", &token).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let said: Value = refused.json().await.unwrap();
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("not an agent running with the gateway"),
        "{said}"
    );
    let other = enrolled(&api, "w2").await;
    for kind in ["network", "gateway"] {
        let refused = relay(kind, &other).await.unwrap();
        assert_eq!(refused.status(), StatusCode::CONFLICT, "{kind}");
    }
    let mut tunnels = Vec::new();
    for _ in 0..pushpals_orchestrator::MAX_TUNNELS_PER_COMMAND {
        let response = open().await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        tunnels.push(response.upgrade().await.unwrap());
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let said: Value = refused.json().await.unwrap();
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("the most one command may"),
        "{said}"
    );
    // One closed, another may open.
    drop(tunnels.pop());
    let mut reopened = None;
    for _ in 0..100 {
        let response = open().await.unwrap();
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            reopened = Some(response.upgrade().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reopened.is_some(),
        "a closed connection gave its place back"
    );
}
