//! What a stop cut short is settled at the next start: approvals nobody
//! waits on are closed, a commit made but not recorded is recorded, a
//! commit approved but not made is offered again, and a worktree a task
//! never recorded is swept.

use super::support::*;
use pushpals_core::{ApprovalAction, ApprovalState, Decision, TaskState};
use pushpals_orchestrator::ApprovalScope;
use pushpals_test_support::TempRepo;
use std::time::Duration;

/// A task awaiting its commit approval, whose approval was then decided
/// as the server stopped (recorded, nothing acted on).
async fn decided_then_stopped(
    repo: &TempRepo,
    data: &std::path::Path,
) -> (pushpals_core::Task, pushpals_core::ApprovalId) {
    let first = boot(repo, data, "").await;
    let task = create(&first, "Edit", "echo more >> README.md").await;
    let task = wait_until(&first, &task.id, |s| s == TaskState::AwaitingApproval).await;
    let pending = first
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending[0].action, ApprovalAction::Commit);
    let approval = pending[0].id;
    first
        .store()
        .write(move |tx| tx.decide_approval(approval, Decision::Approve, "tester", None))
        .await
        .unwrap();
    (task, approval)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_made_but_not_recorded_is_recorded_at_the_next_start() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let (task, _) = decided_then_stopped(&repo, data.path()).await;
    // git made the commit; the stop came before its record.
    let worktree = task.worktree_path.clone().unwrap();
    let git = |args: &[&str]| pushpals_test_support::git_in(std::path::Path::new(&worktree), args);
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=Push Pals",
        "-c",
        "user.email=pushpals@localhost",
        "commit",
        "-q",
        "-m",
        &format!("Edit\n\nPushpals-Task: {}", task.id),
    ]);
    let sha = git(&["rev-parse", "HEAD"]).trim().to_owned();

    let second = boot(&repo, data.path(), "").await;
    let settled = second.store().task(&task.id).await.unwrap();
    assert_eq!(settled.state, TaskState::Committed);
    assert_eq!(settled.commit_sha.as_deref(), Some(sha.as_str()));
    assert!(kinds(&second, &task.id).await.iter().any(|k| k == "commit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_approved_but_not_made_is_offered_again_at_the_next_start() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let (_task, approval) = decided_then_stopped(&repo, data.path()).await;

    let second = boot(&repo, data.path(), "").await;
    assert_eq!(
        second.store().approval(approval).await.unwrap().state,
        ApprovalState::Pending
    );
    let outcome = second
        .decide(
            approval,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worktree_a_task_never_recorded_is_swept_at_the_next_start() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let first = boot(&repo, data.path(), "max_parallel = 1").await;
    let blocker = create(&first, "Blocker", "sleep 30").await;
    wait_until(&first, &blocker.id, |s| s == TaskState::Running).await;
    let queued = create(&first, "Queued", "true").await;
    // As a stop in the middle of `preparing` leaves it: the task is
    // preparing, git made the worktree and branch, the task never recorded
    // them.
    let id = queued.id.clone();
    first
        .store()
        .write(move |tx| {
            tx.transition(
                &id,
                TaskState::Preparing,
                pushpals_store::TaskUpdate::default(),
                user(),
                serde_json::json!(null),
            )
        })
        .await
        .unwrap();
    let path = data.path().join("worktrees").join(queued.id.as_str());
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        &queued.id.branch(),
        path.to_str().unwrap(),
        "HEAD",
    ]);
    drop(first);

    let second = boot(&repo, data.path(), "").await;
    assert_eq!(
        second.store().task(&queued.id).await.unwrap().state,
        TaskState::Interrupted
    );
    assert!(!path.exists(), "the unrecorded worktree is still there");
    assert!(
        repo.git(&["branch", "--list", &queued.id.branch()])
            .trim()
            .is_empty(),
        "the unrecorded branch is still there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_a_task_waits_closes_its_approval_and_continuing_asks_again() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let first = boot(&repo, data.path(), "").await;
    let task = create(&first, "Unknown tool", "frobnicate --all").await;
    wait_until(&first, &task.id, |s| s == TaskState::Waiting).await;
    drop(first);

    let second = boot(&repo, data.path(), "").await;
    assert_eq!(
        second.store().task(&task.id).await.unwrap().state,
        TaskState::Interrupted
    );
    assert!(
        second
            .store()
            .approvals(Some(task.id.clone()), true)
            .await
            .unwrap()
            .is_empty(),
        "an approval nobody waits on still shows pending"
    );
    let refused = second
        .decide_for_task(
            &task.id,
            None,
            pushpals_core::Decision::Approve,
            pushpals_orchestrator::ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            pushpals_orchestrator::OrchestratorError::NoPendingApproval(_)
        ),
        "{refused}"
    );
    // Continuing without a new command runs the task's own command again.
    let continued = second
        .continue_task(&task.id, None, false, user())
        .await
        .unwrap();
    assert_eq!(continued.command.as_deref(), Some("frobnicate --all"));
    wait_until(&second, &task.id, |s| s == TaskState::Waiting).await;
    let pending = second
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].summary.contains("frobnicate --all"),
        "{}",
        pending[0].summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stopped_during_its_checks_continues_with_its_checks_only() {
    let repo = TempRepo::new();
    // The check hangs in the first run (after the command, before the
    // continue): the dropped orchestrator, whose tasks live on in this
    // runtime, then writes nothing while the second one works. The warm-up
    // at the base commit has no "once" and does not wait.
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"if grep -q once README.md && test ! -f .continued; then sleep 60; fi\"\n",
    );
    repo.commit_all("a check that takes a moment");
    let data = tempfile::tempdir().unwrap();
    let first = boot(&repo, data.path(), "").await;
    let task = create(&first, "Append", "echo once >> README.md").await;
    let checking = wait_until(&first, &task.id, |s| s == TaskState::Checking).await;
    for _ in 0..500 {
        if kinds(&first, &task.id)
            .await
            .iter()
            .filter(|k| *k == "command_started")
            .count()
            >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first);

    let second = boot(&repo, data.path(), "").await;
    std::fs::write(
        std::path::Path::new(checking.worktree_path.as_deref().unwrap()).join(".continued"),
        "",
    )
    .unwrap();
    assert_eq!(
        second.store().task(&task.id).await.unwrap().state,
        TaskState::Interrupted
    );
    second
        .continue_task(&task.id, None, false, user())
        .await
        .unwrap();
    let task = wait_until(&second, &task.id, |s| s == TaskState::AwaitingApproval).await;
    let readme = std::fs::read_to_string(
        std::path::Path::new(&task.worktree_path.unwrap()).join("README.md"),
    )
    .unwrap();
    assert_eq!(
        readme.matches("once").count(),
        1,
        "the command ran twice: {readme}"
    );
}
