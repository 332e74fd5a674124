//! Delivery to a real (local, bare) remote: push after approval, rebase
//! when the base moved, nothing pushed on conflicts.

use super::support::*;
use pushpals_core::{ApprovalAction, Decision, TaskState};
use pushpals_orchestrator::{ApprovalScope, OrchestratorError};
use pushpals_test_support::{TempRepo, git_in};

/// A repository whose `origin` is a bare repository holding `main`.
fn repo_with_remote() -> (TempRepo, tempfile::TempDir) {
    let repo = TempRepo::new();
    let remote = tempfile::tempdir().unwrap();
    git_in(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    (repo, remote)
}

/// Another clone pushes a commit to the remote's main.
fn move_remote_base(remote: &std::path::Path, file: &str, content: &str) {
    let other = tempfile::tempdir().unwrap();
    git_in(
        other.path(),
        &["clone", "-q", remote.to_str().unwrap(), "c"],
    );
    let clone = other.path().join("c");
    std::fs::write(clone.join(file), content).unwrap();
    git_in(&clone, &["add", "-A"]);
    git_in(&clone, &["commit", "-q", "-m", "moved"]);
    git_in(&clone, &["push", "-q", "origin", "main"]);
}

async fn committed_task(f: &Fixture, command: &str) -> pushpals_core::Task {
    let task = create(&f.orchestrator, "Edit", command).await;
    wait_until(&f.orchestrator, &task.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    let outcome = f
        .orchestrator
        .decide_for_task(
            &task.id,
            Some(ApprovalAction::Commit),
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Committed);
    outcome.task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_push_puts_the_branch_on_the_remote() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].action, ApprovalAction::Push);

    let outcome = f
        .orchestrator
        .decide_for_task(
            &task.id,
            None,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    let sha = outcome.task.commit_sha.clone().unwrap();
    assert_eq!(git_in(remote.path(), &["rev-parse", &task.branch]), sha);
    assert!(
        kinds(&f.orchestrator, &task.id)
            .await
            .iter()
            .any(|k| k == "push")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_base_is_rebased_onto_before_the_push() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    move_remote_base(remote.path(), "other.txt", "elsewhere\n");
    let remote_main = git_in(remote.path(), &["rev-parse", "main"]);

    let outcome = f
        .orchestrator
        .decide_for_task(
            &task.id,
            None,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    let pushed = git_in(remote.path(), &["rev-parse", &task.branch]);
    assert_eq!(Some(pushed.clone()), outcome.task.commit_sha);
    assert_eq!(
        git_in(remote.path(), &["rev-parse", &format!("{pushed}~1")]),
        remote_main
    );
    assert_eq!(
        outcome.task.base_commit.as_deref(),
        Some(remote_main.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_with_the_moved_base_stop_the_push_and_name_the_file() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "sed -i s/foo/bar/ src/lib.rs").await;
    move_remote_base(remote.path(), "src/lib.rs", "pub fn baz() {}\n");

    let err = f
        .orchestrator
        .decide_for_task(
            &task.id,
            None,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, OrchestratorError::DeliveryBlocked(_)),
        "{err}"
    );
    assert!(err.to_string().contains("src/lib.rs"), "{err}");
    assert!(err.to_string().contains("nothing was pushed"), "{err}");
    assert!(git_in(remote.path(), &["branch", "--list", &task.branch]).is_empty());
    // The approval is still pending, the branch untouched.
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        f.repo.git(&["rev-parse", &task.branch]),
        task.commit_sha.unwrap()
    );
    assert!(
        kinds(&f.orchestrator, &task.id)
            .await
            .iter()
            .any(|k| k == "push_blocked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_remote_no_push_is_offered() {
    let f = start(TempRepo::new(), "").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    assert!(
        f.orchestrator
            .store()
            .approvals(Some(task.id.clone()), true)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_commit_and_push_without_asking_but_never_past_the_secret_gate() {
    use pushpals_core::GrantKind;
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    f.orchestrator
        .set_grant(GrantKind::AutoCommit, true, "tester")
        .await
        .unwrap();
    let grants = f
        .orchestrator
        .set_grant(GrantKind::AutoPush, true, "tester")
        .await
        .unwrap();
    assert_eq!(grants.len(), 2);

    let task = create(&f.orchestrator, "Edit", "echo more >> README.md").await;
    let task = wait_until(&f.orchestrator, &task.id, |s| s.is_final()).await;
    assert_eq!(task.state, TaskState::Committed);
    // Pushed too, without an approval from anyone (right after the commit).
    for _ in 0..500 {
        if kinds(&f.orchestrator, &task.id)
            .await
            .iter()
            .any(|k| k == "push")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let task = f.orchestrator.store().task(&task.id).await.unwrap();
    let pushed = git_in(remote.path(), &["rev-parse", &task.branch]);
    assert_eq!(Some(pushed), task.commit_sha);
    let approvals = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), false)
        .await
        .unwrap();
    assert!(
        approvals.iter().all(|a| a
            .decided_by
            .as_deref()
            .is_some_and(|by| by.contains("grant (given by tester)"))),
        "{approvals:?}"
    );

    // The secret gate still holds.
    let secret = create(
        &f.orchestrator,
        "Key",
        "printf 'k = \"%s%s\"\\n' AKIAQWERTY UIOPASDFGH > k.py",
    )
    .await;
    let secret = wait_until(&f.orchestrator, &secret.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(secret.state, TaskState::AwaitingApproval);

    // Taken back: the next task asks again.
    f.orchestrator
        .set_grant(GrantKind::AutoCommit, false, "tester")
        .await
        .unwrap();
    let asked = create(&f.orchestrator, "Edit again", "echo again >> README.md").await;
    let asked = wait_until(&f.orchestrator, &asked.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(asked.state, TaskState::AwaitingApproval);
    assert!(
        kinds(&f.orchestrator, &asked.id)
            .await
            .iter()
            .all(|k| k != "commit")
    );
}
