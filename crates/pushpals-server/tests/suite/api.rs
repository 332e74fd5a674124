//! The API: auth, error shapes, decisions.
//!
//! Over 400 lines: the API end to end without a socket, one test per route family; split by concern it would repeat the set-up each needs.

use super::support::{api, api_on};
use axum::http::StatusCode;
use serde_json::{Value, json};

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

    // A known path with a method it does not take: a JSON 405 (after the
    // token check), never a 403 or an empty body.
    let (status, body) = api.authed("DELETE", "/api/v1/chat", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["code"], "method_not_allowed");
    let (status, _) = api.call("PATCH", "/api/v1/tasks", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Too large a body: 413; a body that is not declared JSON: 415.
    let huge = json!({ "title": "x".repeat(3 << 20), "command": "true" });
    let (status, body) = api.authed("POST", "/api/v1/tasks", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "too_large");
    assert!(
        body["message"].as_str().unwrap().contains("2 MiB"),
        "{body}"
    );
    let (status, body) = api.plain_post("/api/v1/tasks", "{\"title\": \"x\"}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["code"], "unsupported_media_type");

    // A malformed query string is a JSON 400 naming the parameter.
    for uri in [
        "/api/v1/approvals?pending=maybe",
        "/api/v1/findings?colour=red",
        "/api/v1/scan?changed=null",
    ] {
        let method = if uri.contains("scan") { "POST" } else { "GET" };
        let (status, body) = api.authed(method, uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], "bad_request", "{uri}: {body}");
        let named = uri.split(['?', '=']).nth(1).unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(named),
            "{uri}: {body}"
        );
    }
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

    // Removed, the rejected task has neither worktree nor branch: its
    // diff is a 409 that says so, not a server error.
    let (status, body) = api
        .authed("DELETE", &format!("/api/v1/tasks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .authed("GET", &format!("/api/v1/tasks/{id}/diff"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("branch were removed"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_need_the_admin_scope_and_name_known_kinds() {
    let api = api().await;
    let hash = pushpals_server::hash_token("pp_approver");
    api.state
        .store()
        .write(move |tx| tx.insert_token("phone", &hash, "read operate approve"))
        .await
        .unwrap();
    let (status, _) = api
        .call(
            "PUT",
            "/api/v1/grants/auto-commit",
            Some("pp_approver"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api.authed("PUT", "/api/v1/grants/auto-merge", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("auto-merge"));
    let (status, body) = api.authed("PUT", "/api/v1/grants/auto-commit", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["grants"][0]["kind"], "auto-commit");
    assert_eq!(body["grants"][0]["granted_by"], "admin");
    let (_, body) = api
        .authed("DELETE", "/api/v1/grants/auto-commit", None)
        .await;
    assert_eq!(body["grants"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn unreadable_paths_and_out_of_range_numbers_get_the_json_error_shape() {
    let api = api().await;
    let (status, body) = api.authed("GET", "/api/v1/tasks/%FF%FE/events", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request", "{body}");
    assert!(body["message"].as_str().unwrap().contains("path"), "{body}");

    let task = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(serde_json::json!({ "title": "t", "command": "true" })),
        )
        .await
        .1;
    let id = task["id"].as_str().unwrap();
    for limit in ["0", "10001", "4294967296"] {
        let (status, body) = api
            .authed(
                "GET",
                &format!("/api/v1/tasks/{id}/events?limit={limit}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, _) = api
        .authed(
            "GET",
            &format!("/api/v1/tasks/{id}/events?limit=10000"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Backwards and forwards at once is refused, saying which to give.
    let (status, body) = api
        .authed(
            "GET",
            &format!("/api/v1/tasks/{id}/events?after=1&last=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("one of them"),
        "{body}"
    );
    // The task runs beside the test: wait until it has written a few
    // events, so there is a page before the last two.
    for _ in 0..500 {
        let (_, all) = api
            .authed("GET", &format!("/api/v1/tasks/{id}/events"), None)
            .await;
        if all["events"].as_array().is_some_and(|e| e.len() >= 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The end of the timeline (oldest first), then the page before it.
    let (_, last) = api
        .authed(
            "GET",
            &format!("/api/v1/tasks/{id}/events?last=true&limit=2"),
            None,
        )
        .await;
    let last = last["events"].as_array().unwrap().clone();
    assert_eq!(last.len(), 2, "{last:?}");
    assert!(last[0]["id"].as_i64() < last[1]["id"].as_i64(), "{last:?}");
    let (_, first) = api
        .authed("GET", &format!("/api/v1/tasks/{id}/events?limit=1"), None)
        .await;
    assert_eq!(first["events"][0]["kind"], "task_created", "{first}");
    let before = last[1]["id"].as_i64().unwrap();
    let (_, page) = api
        .authed(
            "GET",
            &format!("/api/v1/tasks/{id}/events?before={before}&limit=1"),
            None,
        )
        .await;
    assert_eq!(page["events"][0]["id"], last[0]["id"], "{page}");
    for days in [36_501u64, 9_223_372_036_854_775_808] {
        let (status, body) = api
            .authed(
                "POST",
                "/api/v1/gc",
                Some(serde_json::json!({ "older_than_days": days, "dry_run": true })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}: {body}");
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let api = api().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let request = axum::http::Request::builder()
            .uri("/api/v1/tasks")
            .header("authorization", format!("{scheme} {}", api.token))
            .body(axum::body::Body::empty())
            .unwrap();
        let response =
            tower::ServiceExt::oneshot(pushpals_server::router(api.state.clone()), request)
                .await
                .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_listed_and_only_images_are_shown_inline() {
    let repo = pushpals_test_support::TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\nartifacts = [\"shots/*.png\", \"report/*.html\"]\n",
    );
    repo.write("shots/home.png", "\u{89}PNG fake");
    repo.write("report/index.html", "<script>alert(1)</script>");
    repo.commit_all("artifacts");
    let api = api_on(repo, "").await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(serde_json::json!({ "title": "Look", "command": "true" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let mut listed = Value::Null;
    for _ in 0..500 {
        let (_, body) = api
            .authed("GET", &format!("/api/v1/tasks/{id}/artifacts"), None)
            .await;
        if body["artifacts"].as_array().is_some_and(|a| a.len() == 2) {
            listed = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let artifacts = listed["artifacts"].as_array().expect("two artifacts");
    let sha = |path: &str| {
        artifacts.iter().find(|a| a["path"] == path).unwrap()["sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, headers, bytes) = api
        .authed_raw(&format!(
            "/api/v1/tasks/{id}/artifacts/{}",
            sha("shots/home.png")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(bytes, "\u{89}PNG fake".as_bytes());
    let (status, headers, _) = api
        .authed_raw(&format!(
            "/api/v1/tasks/{id}/artifacts/{}",
            sha("report/index.html")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let (status, body) = api
        .authed(
            "GET",
            &format!("/api/v1/tasks/{id}/artifacts/not-a-digest"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .authed(
            "GET",
            &format!("/api/v1/tasks/{id}/artifacts/{}", "a".repeat(64)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = api
        .call("GET", &format!("/api/v1/tasks/{id}/artifacts"), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_audit_log_is_read_a_page_at_a_time_by_kind_and_task() {
    let api = api().await;
    let mut ids = Vec::new();
    for title in ["one", "two"] {
        let (_, task) = api
            .authed(
                "POST",
                "/api/v1/tasks",
                Some(json!({ "title": title, "command": "true" })),
            )
            .await;
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = api
        .authed(
            "GET",
            "/api/v1/audit/events?kind=task_created&limit=1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["task_id"], ids[1].as_str(), "the newest first");
    assert!(
        page["kinds"]
            .as_array()
            .unwrap()
            .contains(&json!("task_created")),
        "{page}"
    );
    let before = events[0]["id"].as_i64().unwrap();
    let (_, older) = api
        .authed(
            "GET",
            &format!("/api/v1/audit/events?kind=task_created&before={before}"),
            None,
        )
        .await;
    assert_eq!(older["events"][0]["task_id"], ids[0].as_str(), "{older}");
    // By task: only its events.
    let (_, mine) = api
        .authed(
            "GET",
            &format!("/api/v1/audit/events?task={}", ids[0]),
            None,
        )
        .await;
    assert!(
        mine["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["task_id"] == ids[0].as_str()),
        "{mine}"
    );
    // Bad input: said plainly.
    let (status, body) = api
        .authed("GET", "/api/v1/audit/events?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .authed("GET", "/api/v1/audit/events?task=999", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
