//! Worker hosts over the API: named with labels by an admin, enrolled once
//! with the one-time token, reporting with a token that can do nothing else,
//! refused when of another version, and revoked at once.

use super::support::api;
use axum::http::StatusCode;
use serde_json::json;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn now() -> String {
    pushpals_core::timestamp::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_enrols_once_reports_and_is_revoked_at_once() {
    let api = api().await;
    let (status, added) = api
        .authed(
            "POST",
            "/api/v1/workers",
            Some(json!({ "name": "build-1", "labels": ["cargo", "node"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let enrolment = added["enrolment_token"].as_str().unwrap().to_owned();
    assert!(added["worker"]["enrolled_at"].is_null());

    // Another series is refused before the token is spent.
    let (status, refused) = api
        .call(
            "POST",
            "/api/v1/workers/enrol",
            None,
            Some(json!({ "token": enrolment, "cores": 4, "version": "99.0.0", "time": now() })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("99.0.0") && message.contains(VERSION),
        "{message}"
    );

    // A clock far off is refused too, naming by how much.
    let (status, off) = api
        .call(
            "POST",
            "/api/v1/workers/enrol",
            None,
            Some(json!({ "token": enrolment, "cores": 4, "version": VERSION, "time": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{off}");
    assert!(off["message"].as_str().unwrap().contains("clock"), "{off}");

    let body = json!({ "token": enrolment, "cores": 4, "version": VERSION, "time": now() });
    let (status, enrolled) = api
        .call("POST", "/api/v1/workers/enrol", None, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let token = enrolled["token"].as_str().unwrap().to_owned();
    assert_eq!(enrolled["worker"]["name"], "build-1");
    let (status, twice) = api
        .call("POST", "/api/v1/workers/enrol", None, Some(body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{twice}");
    assert!(twice["message"].as_str().unwrap().contains("used already"));

    // The worker's token reports, and reads nothing else.
    let report = json!({ "cores": 8, "version": VERSION, "time": now() });
    let (status, seen) = api
        .call(
            "POST",
            "/api/v1/workers/heartbeat",
            Some(&token),
            Some(report.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["name"], "build-1");
    for (method, uri) in [
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/workers"),
        ("POST", "/api/v1/workers"),
        ("GET", "/api/v1/audit/verify"),
    ] {
        let (status, _) = api.call(method, uri, Some(&token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    let (_, listed) = api.authed("GET", "/api/v1/workers", None).await;
    let worker = &listed["workers"][0];
    assert_eq!(worker["labels"], json!(["cargo", "node"]));
    assert_eq!(worker["cores"], 8);
    assert_eq!(worker["version"], VERSION);
    assert!(worker["last_seen"].is_string());

    // Its heartbeat's age is a metric, while it is enrolled.
    let (status, metrics) = api.authed_text("GET", "/api/v1/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pushpals_worker_heartbeat_age_seconds{name=\"build-1\"} "))
        .expect("the worker's heartbeat age")
        .parse()
        .unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");

    // Revoked: its token stops working at once.
    let (status, _) = api.authed("DELETE", "/api/v1/workers/build-1", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/workers/heartbeat",
            Some(&token),
            Some(report),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, again) = api.authed("DELETE", "/api/v1/workers/build-1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    let (_, metrics) = api.authed_text("GET", "/api/v1/metrics").await;
    assert!(!metrics.contains("heartbeat_age_seconds{name=\"build-1\"}"));

    // Revoking a worker's token as a device token revokes the worker.
    let (status, added) = api
        .authed(
            "POST",
            "/api/v1/workers",
            Some(json!({ "name": "build-2" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, enrolled) = api
        .call(
            "POST",
            "/api/v1/workers/enrol",
            None,
            Some(json!({ "token": added["enrolment_token"], "cores": 1, "version": VERSION, "time": now() })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let (_, devices) = api.authed("GET", "/api/v1/devices", None).await;
    let id = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "worker:build-2")
        .unwrap()["id"]
        .clone();
    let (status, _) = api
        .authed("DELETE", &format!("/api/v1/devices/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = api.authed("GET", "/api/v1/workers", None).await;
    let second = listed["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "build-2")
        .unwrap()
        .clone();
    assert!(second["revoked_at"].is_string(), "{second}");
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/workers/heartbeat",
            enrolled["token"].as_str(),
            Some(json!({ "cores": 1, "version": VERSION, "time": now() })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A second name of the same worker, or a bad name or label, is refused.
    let (status, _) = api
        .authed("POST", "/api/v1/workers", Some(json!({ "name": "b" })))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, clash) = api
        .authed("POST", "/api/v1/workers", Some(json!({ "name": "b" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{clash}");
    for bad in [
        json!({ "name": "../x" }),
        json!({ "name": "ok", "labels": ["Has Space"] }),
        json!({ "name": "ok", "ttl_secs": 0 }),
    ] {
        let (status, said) = api.authed("POST", "/api/v1/workers", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{said}");
    }
    // The audit log has who named, enrolled and revoked it.
    let (_, kinds) = api
        .authed(
            "GET",
            "/api/v1/audit/events?kind=worker_enrolled&limit=5",
            None,
        )
        .await;
    assert!(kinds.to_string().contains("build-1"), "{kinds}");
}
