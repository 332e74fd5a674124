//! A run's base for a worker that already holds some of the repository's
//! history: the bundle leaves out what the commits it names bring, or is
//! not sent at all when it holds the base; names that are not commit ids
//! are refused with what to give.

use super::support::api_on;
use super::worker_runs::{enrolled, next};
use axum::http::StatusCode;
use pushpals_test_support::TempRepo;
use serde_json::{Value, json};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holding_older_history_gets_a_thin_bundle_or_none() {
    let repo = TempRepo::new();
    // An old commit with a large file, then a small change on top.
    let noise: String = (0..40_000)
        .map(|i| format!("{:x}", i * 7919 % 65_521))
        .collect();
    repo.write("old.txt", &noise);
    repo.commit_all("old");
    let old = git(&repo.path, &["rev-parse", "HEAD"]);
    repo.write("new.txt", "new\n");
    repo.commit_all("new");
    let api = api_on(repo, "[workers]\nlocal = false\n").await;
    let token = enrolled(&api, "w1").await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "t", "command": "true" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let base = start["base_commit"].as_str().unwrap().to_owned();
    let url = |have: &str| format!("/api/v1/workers/tasks/{id}/base?lease={lease}{have}");

    let (status, full) = api.call_bytes("GET", &url(""), &token, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, thin) = api
        .call_bytes("GET", &url(&format!("&have={old}")), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        thin.len() * 10 < full.len(),
        "{} against {}",
        thin.len(),
        full.len()
    );
    // The thin bundle names the commit it needs and brings the new one.
    let text = String::from_utf8_lossy(&thin);
    assert!(text.contains(&format!("-{old}")), "{text:.300}");

    // Holding the base: nothing is sent.
    let (status, none) = api
        .call_bytes("GET", &url(&format!("&have={base}")), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(none.is_empty());
    // A commit this repository does not have is passed over.
    let unknown = "ab".repeat(20);
    let (status, whole) = api
        .call_bytes("GET", &url(&format!("&have={unknown}")), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whole.len(), full.len());

    // What is not a commit id is refused, saying what to give.
    for (have, says) in [
        ("HEAD", "not a full commit id"),
        ("--output=/tmp/x", "not a full commit id"),
    ] {
        let (status, body) = api
            .call_bytes("GET", &url(&format!("&have={have}")), &token, vec![])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{have}");
        assert!(String::from_utf8_lossy(&body).contains(says), "{have}");
    }
    let many = vec![base.as_str(); 33].join(",");
    let (status, body) = api
        .call_bytes("GET", &url(&format!("&have={many}")), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("at most 32"));
    // Under another lease, nothing, as before.
    let (status, _) = api
        .call_bytes(
            "GET",
            &format!(
                "/api/v1/workers/tasks/{id}/base?lease={}&have={base}",
                lease + 1
            ),
            &token,
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
