//! Artifacts: the files a task's checks leave, named in `pushpals.toml`,
//! kept by content with a summary whether the checks passed or not; links
//! and files over the limit are refused and said so; a path leaving the
//! worktree is a configuration error; removing the task removes them.

use super::support::*;
use pushpals_core::TaskState;
use pushpals_test_support::TempRepo;

const JUNIT: &str = r#"<testsuite name="t"><testcase classname="a" name="ok"/><testcase classname="a" name="bad"><failure message="boom"/></testcase></testsuite>"#;

fn payloads(events: &[pushpals_core::Event], kind: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_checks_report_and_screenshot_are_kept_and_links_and_giants_are_refused() {
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"cp fixtures/junit.xml reports/junit.xml; exit 1\"\nartifacts = [\"reports/*.xml\", \"shots/*.png\"]\n",
    );
    repo.write("fixtures/junit.xml", JUNIT);
    repo.write("reports/.keep", "");
    repo.write("shots/home.png", "\u{89}PNG fake image");
    std::fs::write(repo.path.join("reports/big.xml"), vec![b'x'; 11 << 20]).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", repo.path.join("reports/leak.xml")).unwrap();
    repo.commit_all("reports");
    let f = start(repo, "").await;
    let task = create(&f.orchestrator, "Run the tests", "true").await;
    let task = wait_until(&f.orchestrator, &task.id, |s| s == TaskState::Failed).await;
    let events = f
        .orchestrator
        .store()
        .events(pushpals_store::EventQuery {
            task_id: Some(task.id.clone()),
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
    let published = payloads(&events, "artifact_published");
    let paths: Vec<_> = published
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["reports/junit.xml", "shots/home.png"],
        "{published:?}"
    );
    assert_eq!(published[0]["kind"], "junit");
    assert_eq!(published[0]["summary"]["failures"], 1);
    assert_eq!(published[0]["summary"]["failed"][0], "a::bad");
    assert_eq!(published[1]["kind"], "image");
    let refused = payloads(&events, "artifact_refused");
    let reasons: Vec<_> = refused
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["path"].as_str().unwrap(),
                p["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("reports/big.xml") && r.contains("over the")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("reports/leak.xml") && r.contains("link")),
        "{reasons:?}"
    );

    let sha = published[0]["sha256"].as_str().unwrap();
    let (record, bytes) = f
        .orchestrator
        .artifact(&task.id, sha)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.path, "reports/junit.xml");
    assert_eq!(bytes, JUNIT.as_bytes());
    assert!(
        f.orchestrator
            .artifact(&task.id, &"0".repeat(64))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.orchestrator
            .artifact(&task.id, "../../etc/passwd")
            .await
            .unwrap()
            .is_none()
    );

    f.orchestrator.remove_task(&task.id, user()).await.unwrap();
    assert!(
        f.orchestrator
            .artifact(&task.id, sha)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_path_that_leaves_the_worktree_fails_the_task_with_what_to_write() {
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\nartifacts = [\"../secrets.txt\"]\n",
    );
    repo.commit_all("bad artifacts");
    let f = start(repo, "").await;
    let task = create(&f.orchestrator, "Anything", "true").await;
    let task = wait_until(&f.orchestrator, &task.id, |s| s == TaskState::Failed).await;
    let reason = task.reason.unwrap_or_default();
    assert!(
        reason.contains("`../secrets.txt` is not a path inside the worktree"),
        "{reason}"
    );
}
