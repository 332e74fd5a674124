//! A delivery decision happens once: approvals tapped together, twice or
//! from two devices, act once and the others get a clear conflict; a
//! decision cut short by a stop is offered again at the next start.

use super::delivery::{committed_task, decide, fake_forge, move_remote_base, repo_with_remote};
use super::support::*;
use pushpals_core::{ApprovalAction, ApprovalState, Decision};
use pushpals_orchestrator::OrchestratorError;
use pushpals_store::StoreError;

/// Whether an error is one the API answers with 409 Conflict for a
/// decision already taken or under way.
fn is_conflict(error: &OrchestratorError) -> bool {
    matches!(
        error,
        OrchestratorError::DeliveryInProgress(_)
            | OrchestratorError::Store(StoreError::AlreadyDecided { .. })
            | OrchestratorError::NoPendingApproval(_)
    )
}

/// What the fake forge received.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// An orchestrator with a forge on loopback, and a task committed and
/// pushed, whose pull request is offered.
async fn pushed_with_a_forge(
    repo: pushpals_test_support::TempRepo,
) -> (Fixture, pushpals_core::Task, Seen) {
    let (forge_url, seen) = fake_forge().await;
    let settings = format!(
        "[forge]\nkind = \"github\"\napi_url = \"{forge_url}\"\nowner = \"acme\"\nrepo = \"w\"\ntoken_env = \"CARGO_PKG_NAME\"\n"
    );
    let f = start(repo, &settings).await;
    let task = committed_task(&f, "echo more >> README.md").await;
    decide(&f, &task.id, Some(ApprovalAction::Push), Decision::Approve)
        .await
        .unwrap();
    (f, task, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_approved_three_times_at_once_is_opened_once() {
    let (repo, _remote) = repo_with_remote();
    let (f, task, seen) = pushed_with_a_forge(repo).await;
    let pr = Some(ApprovalAction::Pr);
    let (a, b, c) = tokio::join!(
        decide(&f, &task.id, pr, Decision::Approve),
        decide(&f, &task.id, pr, Decision::Approve),
        decide(&f, &task.id, pr, Decision::Approve),
    );
    let results = [a, b, c];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for result in &results {
        if let Err(error) = result {
            assert!(is_conflict(error), "{error}");
        }
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the forge was asked more than once"
    );
    let events = kinds(&f.orchestrator, &task.id).await;
    assert_eq!(events.iter().filter(|k| *k == "pr_opened").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_approved_twice_at_once_after_the_base_moved_pushes_once() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "echo more >> notes.txt").await;
    move_remote_base(remote.path(), "other.txt", "moved\n");
    let push = Some(ApprovalAction::Push);
    let (a, b) = tokio::join!(
        decide(&f, &task.id, push, Decision::Approve),
        decide(&f, &task.id, push, Decision::Approve),
    );
    let (ok, err) = match (a, b) {
        (Ok(ok), Err(err)) | (Err(err), Ok(ok)) => (ok, err),
        (a, b) => panic!("expected one push and one conflict: {a:?} {b:?}"),
    };
    assert!(is_conflict(&err), "{err}");
    assert!(ok.task.commit_sha.is_some());
    let events = kinds(&f.orchestrator, &task.id).await;
    assert_eq!(events.iter().filter(|k| *k == "push").count(), 1);
    assert!(!events.iter().any(|k| k == "push_blocked"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_short_by_a_stop_is_offered_again() {
    let (repo, _remote) = repo_with_remote();
    let data = tempfile::tempdir().unwrap();
    let first = boot(&repo, data.path(), "").await;
    let task = create(&first, "Edit", "echo more >> README.md").await;
    wait_until(&first, &task.id, |s| {
        s == pushpals_core::TaskState::AwaitingApproval
    })
    .await;
    first
        .decide_for_task(
            &task.id,
            None,
            Decision::Approve,
            pushpals_orchestrator::ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    // The decision is recorded and then the server stops before pushing.
    let push = first
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    let push_id = push[0].id;
    first
        .store()
        .write(move |tx| tx.decide_approval(push_id, Decision::Approve, "tester", None))
        .await
        .unwrap();
    drop(first);

    let second = boot(&repo, data.path(), "").await;
    let approval = second.store().approval(push_id).await.unwrap();
    assert_eq!(approval.state, ApprovalState::Pending);
    let events = second
        .store()
        .events(pushpals_store::EventQuery {
            task_id: Some(task.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let again = events
        .iter()
        .rev()
        .find(|e| e.kind == "approval_requested")
        .unwrap();
    assert!(
        again.payload["again_after"]
            .as_str()
            .unwrap()
            .contains("stopped while carrying it out"),
        "{}",
        again.payload
    );
    assert_eq!(again.payload["detail"]["base_branch"], "main");
    // And approving it now pushes.
    let pushed = second
        .decide(
            push_id,
            Decision::Approve,
            pushpals_orchestrator::ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    assert_eq!(pushed.approval.state, ApprovalState::Approved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_task_updates_its_open_pull_request_and_is_not_offered_another() {
    let (repo, remote) = repo_with_remote();
    let (f, task, seen) = pushed_with_a_forge(repo).await;
    decide(&f, &task.id, Some(ApprovalAction::Pr), Decision::Approve)
        .await
        .unwrap();

    f.orchestrator
        .continue_task(
            &task.id,
            Some("echo again >> README.md".into()),
            false,
            user(),
        )
        .await
        .unwrap();
    wait_until(&f.orchestrator, &task.id, |s| {
        s == pushpals_core::TaskState::AwaitingApproval
    })
    .await;
    decide(
        &f,
        &task.id,
        Some(ApprovalAction::Commit),
        Decision::Approve,
    )
    .await
    .unwrap();
    let pushed = decide(&f, &task.id, Some(ApprovalAction::Push), Decision::Approve)
        .await
        .unwrap();
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let events = f
        .orchestrator
        .store()
        .events(pushpals_store::EventQuery {
            task_id: Some(task.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let last_push = events.iter().rev().find(|e| e.kind == "push").unwrap();
    assert_eq!(
        last_push.payload["updates_pull_request"],
        "https://forge.test/acme/w/pull/3"
    );
    // Its commit names both runs' commands, not only the last.
    let message = f.repo.git(&[
        "log",
        "-1",
        "--format=%B",
        pushed.task.commit_sha.as_deref().unwrap(),
    ]);
    assert!(
        message.contains("Ran: echo more >> README.md\nRan: echo again >> README.md"),
        "{message}"
    );
    // The remote branch carries the continued commit.
    let remote_head = pushpals_test_support::git_in(
        remote.path(),
        &["rev-parse", &format!("refs/heads/{}", task.branch)],
    );
    assert_eq!(
        remote_head.trim(),
        pushed.task.commit_sha.as_deref().unwrap()
    );
}
