//! Before a task starts, its base branch is fetched: a new upstream commit
//! is the next task's base, the person's unpushed commits are kept, and a
//! fetch that fails makes the task wait and say why, or start from the
//! last fetched base when the settings allow it.

use super::delivery::{move_remote_base, repo_with_remote};
use super::support::*;
use pushpals_core::{Event, TaskId, TaskState};
use pushpals_test_support::git_in;

async fn events_of(f: &Fixture, id: &TaskId, kind: &str) -> Vec<Event> {
    task_events(&f.orchestrator, id)
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_upstream_commit_is_the_next_tasks_base_and_unpushed_work_is_kept() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    move_remote_base(remote.path(), "upstream.txt", "from upstream\n");
    let upstream = git_in(remote.path(), &["rev-parse", "main"]);

    let task = create(
        &f.orchestrator,
        "Sees upstream",
        "cat upstream.txt > seen.txt",
    )
    .await;
    let done = wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(done.state, TaskState::AwaitingApproval, "{:?}", done.reason);
    assert_eq!(done.base_commit.as_deref(), Some(upstream.as_str()));
    let fetched = events_of(&f, &task.id, "base_fetched").await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(
        fetched[0].payload["why"],
        "the remote base is ahead of the local HEAD"
    );
    // The person's checkout was not moved: only the remote-tracking ref.
    assert_ne!(f.repo.git(&["rev-parse", "HEAD"]).trim(), upstream);

    // A commit the person made and did not push: the task starts from it.
    f.repo.git(&["merge", "-q", "--ff-only", "origin/main"]);
    f.repo.write("local.txt", "mine\n");
    f.repo.commit_all("unpushed");
    let local = f.repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let task = create(&f.orchestrator, "Sees mine", "cat local.txt > seen.txt").await;
    let done = wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(done.state, TaskState::AwaitingApproval, "{:?}", done.reason);
    assert_eq!(done.base_commit.as_deref(), Some(local.as_str()));
    let fetched = events_of(&f, &task.id, "base_fetched").await;
    assert_eq!(
        fetched[0].payload["why"],
        "the local HEAD is ahead of the remote base"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fetch_makes_the_task_wait_and_say_why_until_cancelled_or_out_of_time() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    std::fs::remove_dir_all(remote.path()).unwrap();
    let task = create(&f.orchestrator, "Waits", "true").await;
    let mut failures = Vec::new();
    for _ in 0..500 {
        failures = events_of(&f, &task.id, "base_fetch_failed").await;
        if !failures.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        failures[0].payload["retry_in_secs"], 5,
        "{:?}",
        failures[0].payload
    );
    assert!(
        failures[0].payload["error"]
            .as_str()
            .unwrap()
            .contains("fetch")
    );
    let status = f.orchestrator.chat("status", user(), false).await.unwrap();
    assert!(
        status.reply.contains("cannot fetch origin/main"),
        "{}",
        status.reply
    );
    assert_eq!(
        f.orchestrator.store().task(&task.id).await.unwrap().state,
        TaskState::Preparing
    );
    // Cancelling ends the wait at once.
    f.orchestrator.cancel_task(&task.id, user()).await.unwrap();
    let done = wait_until(&f.orchestrator, &task.id, |s| s.is_final()).await;
    assert_eq!(done.state, TaskState::Cancelled);
    assert!(done.worktree_path.is_none(), "no worktree was made");

    // Out of time: the task fails and says what to do.
    let f = start(f.repo, "[delivery]\nfetch_wait_secs = 1\n").await;
    let task = create(&f.orchestrator, "Gives up", "true").await;
    let done = wait_until(&f.orchestrator, &task.id, |s| s.is_final()).await;
    assert_eq!(done.state, TaskState::Failed);
    let reason = done.reason.unwrap();
    assert!(reason.contains("cannot fetch origin/main"), "{reason}");
    assert!(
        reason.contains("on_fetch_failure = \"last_fetched\""),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_last_fetched_a_failing_fetch_starts_from_the_base_fetched_before() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "[delivery]\non_fetch_failure = \"last_fetched\"\n").await;
    move_remote_base(remote.path(), "upstream.txt", "from upstream\n");
    let upstream = git_in(remote.path(), &["rev-parse", "main"]);
    let first = create(&f.orchestrator, "Fetches", "true").await;
    wait_until(&f.orchestrator, &first.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    // The remote moves again, then goes away: the next task starts from
    // what was fetched last, and says so.
    move_remote_base(remote.path(), "later.txt", "later\n");
    std::fs::remove_dir_all(remote.path()).unwrap();
    let task = create(&f.orchestrator, "Falls back", "cat upstream.txt > seen.txt").await;
    let done = wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(done.state, TaskState::AwaitingApproval, "{:?}", done.reason);
    assert_eq!(done.base_commit.as_deref(), Some(upstream.as_str()));
    let failed = events_of(&f, &task.id, "base_fetch_failed").await;
    assert_eq!(
        failed[0].payload["fallback"], "last_fetched",
        "{:?}",
        failed[0].payload
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_started_together_fetch_without_tripping_over_each_other() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "max_parallel = 4\n").await;
    move_remote_base(remote.path(), "upstream.txt", "from upstream\n");
    let upstream = git_in(remote.path(), &["rev-parse", "main"]);
    let mut tasks = Vec::new();
    for n in 0..4 {
        tasks.push(
            create(
                &f.orchestrator,
                &format!("Together {n}"),
                &format!("echo {n} > n{n}.txt"),
            )
            .await,
        );
    }
    for task in &tasks {
        let done = wait_until(&f.orchestrator, &task.id, |s| {
            s.is_final() || s == TaskState::AwaitingApproval
        })
        .await;
        assert_eq!(done.state, TaskState::AwaitingApproval, "{:?}", done.reason);
        assert_eq!(done.base_commit.as_deref(), Some(upstream.as_str()));
        let failed = events_of(&f, &task.id, "base_fetch_failed").await;
        assert!(
            failed.is_empty(),
            "{:?}",
            failed.iter().map(|e| &e.payload).collect::<Vec<_>>()
        );
    }
}
