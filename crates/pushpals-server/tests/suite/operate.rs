//! The operator's probes: `/readyz` says ready, or which condition fails
//! and what to do.

use super::support::{api, api_with};
use axum::http::StatusCode;
use serde_json::Value;

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {body}"))
}

#[tokio::test]
async fn readyz_is_public_and_ready_when_all_three_hold() {
    let api = api().await;
    let (status, body) = api.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    for name in ["database", "sandbox", "disk"] {
        assert_eq!(check(&body, name)["ok"], true, "{body}");
    }
    assert!(
        check(&body, "disk")["detail"]
            .as_str()
            .unwrap()
            .contains("MiB free")
    );
    assert!(
        check(&body, "sandbox")["detail"]
            .as_str()
            .unwrap()
            .contains("a probe took"),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_when_the_disk_is_short() {
    let api = api_with("[server]\nready_min_free_mib = 1000000000\n").await;
    let (status, body) = api.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    let disk = check(&body, "disk");
    assert_eq!(disk["ok"], false);
    let detail = disk["detail"].as_str().unwrap();
    assert!(
        detail.contains("under the 1000000000 MiB minimum"),
        "{detail}"
    );
    assert!(detail.contains("pushpals gc"), "says what to do: {detail}");
    assert_eq!(check(&body, "database")["ok"], true);
}

#[tokio::test]
async fn readyz_is_503_when_the_sandbox_cannot_run_its_probe() {
    let api = api().await;
    // The probe's directory is taken by a file: the sandbox cannot start
    // a command there.
    std::fs::write(api.data.path().join("ready-probe"), "in the way").unwrap();
    let (status, body) = api.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let sandbox = check(&body, "sandbox");
    assert_eq!(sandbox["ok"], false);
    assert!(
        sandbox["detail"]
            .as_str()
            .unwrap()
            .contains("probe directory"),
        "{body}"
    );
}

#[tokio::test]
async fn metrics_need_a_token_and_name_every_series() {
    let api = api().await;
    let (status, _) = api.call("GET", "/api/v1/metrics", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = api.authed_text("GET", "/api/v1/metrics").await;
    assert_eq!(status, StatusCode::OK);
    // Series without labels show from the start; labelled ones once
    // something happened (the end-to-end agent test reads those).
    for name in [
        "pushpals_tasks{state=\"queued\"} 0\n",
        "pushpals_tasks{state=\"committed\"} 0\n",
        "pushpals_queue_depth 0\n",
        "pushpals_approvals_pending 0\n",
        "pushpals_command_duration_seconds_count 0\n",
        "pushpals_event_write_seconds_count",
        "pushpals_event_commit_seconds_count",
        "pushpals_event_batch_requests_count",
        "pushpals_event_batch_failures_total 0\n",
        "pushpals_sse_subscribers 0\n",
        "pushpals_sandbox_start_seconds ",
    ] {
        assert!(text.contains(name), "{name} in\n{text}");
    }
}
