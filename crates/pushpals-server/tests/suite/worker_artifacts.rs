//! A run's artifacts from a worker, played by the test: after the checks
//! the worker is asked for the files `[checks] artifacts` names; each it
//! sends is checked against its SHA-256; its report's files are read and
//! described here, and one it names but did not send, or that the
//! patterns do not match, is refused, as are those it refused itself.

use super::support::api_on;
use super::worker_runs::{cloned_base, enrolled, events, next, send_change, state_until};
use axum::http::StatusCode;
use pushpals_test_support::TempRepo;
use serde_json::{Value, json};
use sha2::Digest;

const JUNIT: &str = r#"<testsuite name="t" tests="2" failures="1"><testcase name="ok"/><testcase name="bad"><failure message="boom"/></testcase></testsuite>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_artifacts_are_checked_kept_and_described_here() {
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"true\"\nartifacts = [\"reports/*.xml\"]\n",
    );
    repo.commit_all("checks");
    let api = api_on(repo, "[workers]\nlocal = false\n").await;
    let token = enrolled(&api, "w1").await;
    let (_, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "t", "command": "true" })),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    let result = format!("/api/v1/workers/tasks/{id}/result");
    let (_temp, clone) = cloned_base(&api, &token, &start).await;
    let mut changed = false;
    // Through the warm cache (it has one), the command and the check.
    loop {
        let instruction = next(&api, &token, holding.clone()).await;
        match instruction["kind"].as_str().unwrap() {
            "warm" => {
                let had = json!({ "lease": lease, "key": instruction["key"], "used": true });
                let (status, _) = api
                    .call(
                        "POST",
                        &format!("/api/v1/workers/tasks/{id}/warm"),
                        Some(&token),
                        Some(had),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
            }
            "run" if instruction["command_line"] == "true" && !changed => {
                // The task's command makes a file.
                changed = true;
                let tree = send_change(&api, &token, &id, &instruction, &clone, |clone| {
                    std::fs::write(clone.join("A.md"), "hi\n").unwrap();
                })
                .await;
                let report = json!({ "lease": lease, "seq": instruction["seq"], "chunks": 0, "exit_code": 0, "tree": tree });
                let (status, _) = api.call("POST", &result, Some(&token), Some(report)).await;
                assert_eq!(status, StatusCode::OK);
            }
            "run" => {
                let report = json!({ "lease": lease, "seq": instruction["seq"], "chunks": 0, "exit_code": 0 });
                let (status, _) = api.call("POST", &result, Some(&token), Some(report)).await;
                assert_eq!(status, StatusCode::OK);
            }
            "send_artifacts" => {
                assert_eq!(instruction["patterns"][0], "reports/*.xml");
                break;
            }
            other => panic!("unexpected {other}: {instruction}"),
        }
    }
    let digest = hex::encode(sha2::Sha256::digest(JUNIT.as_bytes()));
    let put = |sha: &str| format!("/api/v1/workers/tasks/{id}/artifacts/{sha}?lease={lease}");
    // Bytes that are not what their digest says, or no digest at all.
    let other = "ab".repeat(32);
    let (status, body) = api
        .call_bytes("PUT", &put(&other), &token, JUNIT.as_bytes().to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body).contains("not ab"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = api
        .call_bytes("PUT", &put("../../etc"), &token, JUNIT.as_bytes().to_vec())
        .await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND);
    let (status, _) = api
        .call_bytes(
            "PUT",
            &format!(
                "/api/v1/workers/tasks/{id}/artifacts/{digest}?lease={}",
                lease + 1
            ),
            &token,
            JUNIT.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "another lease");
    let (status, _) = api
        .call_bytes("PUT", &put(&digest), &token, JUNIT.as_bytes().to_vec())
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = json!({
        "lease": lease,
        "taken": [
            { "path": "reports/junit.xml", "sha256": digest },
            { "path": "reports/unsent.xml", "sha256": "cd".repeat(32) },
            { "path": "secrets/key.pem", "sha256": digest },
        ],
        "refused": [["reports/link.xml", "it is a link"]],
    });
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/workers/tasks/{id}/artifacts"),
            Some(&token),
            Some(report),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    state_until(&api, &id, "awaiting_approval").await;
    let (_, listed) = api
        .authed("GET", &format!("/api/v1/tasks/{id}/artifacts"), None)
        .await;
    let published = listed["artifacts"].as_array().unwrap();
    assert_eq!(published.len(), 1, "{listed}");
    assert_eq!(published[0]["path"], "reports/junit.xml");
    assert_eq!(published[0]["kind"], "junit", "described here: {listed}");
    let refused: Vec<(String, String)> = events(&api, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "artifact_refused")
        .map(|e| {
            (
                e["payload"]["path"].as_str().unwrap().to_owned(),
                e["payload"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reason = |path: &str| {
        refused
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("reports/unsent.xml").contains("did not send it"),
        "{refused:?}"
    );
    assert!(
        reason("secrets/key.pem").contains("does not"),
        "{refused:?}"
    );
    assert_eq!(reason("reports/link.xml"), "on worker w1: it is a link");
    let (status, bytes) = api
        .authed_text("GET", &format!("/api/v1/tasks/{id}/artifacts/{digest}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, JUNIT);
}
