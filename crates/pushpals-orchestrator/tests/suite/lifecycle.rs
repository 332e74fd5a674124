//! From creation to commit: checks, failures, limits, cancel, deny, removal,
//! bad requests and restarts.
//!
//! Over 400 lines: one test per edge of the task lifecycle, sharing this
//! file's helpers.

use super::support::*;
use pushpals_core::{Decision, TaskId, TaskState};
use pushpals_orchestrator::{ApprovalScope, NewTask, OrchestratorError};
use pushpals_store::EventQuery;
use pushpals_test_support::TempRepo;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_task_runs_checks_and_commits_on_approval() {
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\nbuild = \"grep -q bar src/lib.rs\"\ntest = \"echo tests ok\"\n",
    );
    repo.commit_all("checks");
    let f = start(repo, "").await;
    let task = create(
        &f.orchestrator,
        "Rename foo to bar",
        "sed -i s/foo/bar/g src/lib.rs",
    )
    .await;
    let task = wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(task.state, TaskState::AwaitingApproval, "{:?}", task.reason);
    let diff = f.orchestrator.diff(&task.id).await.unwrap();
    assert!(diff.diff.text.contains("+pub fn bar() {}"));

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
    assert_eq!(outcome.task.state, TaskState::Committed);
    let sha = outcome.task.commit_sha.unwrap();
    let message = f.repo.git(&["log", "-1", "--format=%B", &sha]);
    assert!(
        message.starts_with("Rename foo to bar\n\nRan: sed -i s/foo/bar/g src/lib.rs"),
        "{message}"
    );
    assert!(
        message.contains("Checks: build passed, test passed"),
        "{message}"
    );
    assert_eq!(
        f.repo.read("src/lib.rs"),
        "pub fn foo() {}\n",
        "the person's checkout is untouched"
    );

    let kinds = kinds(&f.orchestrator, &task.id).await;
    for expected in [
        "task_created",
        "worktree_created",
        "command_started",
        "output",
        "command_finished",
        "check_result",
        "diff",
        "approval_requested",
        "approval_decided",
        "commit",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected} event in {kinds:?}"
        );
    }
    let again = f
        .orchestrator
        .decide_for_task(
            &task.id,
            None,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await;
    assert!(matches!(
        again,
        Err(OrchestratorError::NoPendingApproval(_))
    ));
    assert!(f.orchestrator.store().verify_chain().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_fails_the_task_with_its_output() {
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"echo 'assertion failed: 1 == 2'; exit 1\"\n",
    );
    repo.commit_all("checks");
    let f = start(repo, "").await;
    let task = create(&f.orchestrator, "Touch", "echo hi > new.txt").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::Failed);
    let reason = task.reason.unwrap();
    assert!(reason.contains("check:test"), "{reason}");
    assert!(reason.contains("assertion failed: 1 == 2"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_change_to_pushpals_toml_does_not_change_the_checks() {
    let repo = TempRepo::new();
    repo.write("pushpals.toml", "[checks]\ntest = \"exit 1\"\n");
    repo.commit_all("checks");
    let f = start(repo, "").await;
    let task = create(
        &f.orchestrator,
        "Cheat",
        "printf '[checks]\\ntest = \"true\"\\n' > pushpals.toml",
    )
    .await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_time_limits_and_empty_diffs_end_the_task_clearly() {
    let f = start(TempRepo::new(), "[limits]\ncommand_timeout_secs = 1\n").await;
    let missing = f
        .orchestrator
        .create_task(
            NewTask {
                title: "Missing".into(),
                command: Some("definitely-not-a-program".into()),
                agent: None,
                approve_command: true,
                repo: None,
            },
            user(),
        )
        .await
        .unwrap();
    let slow = create(&f.orchestrator, "Slow", "sleep 30").await;
    let nothing = create(&f.orchestrator, "Nothing", "ls > /dev/null").await;
    let binary = create(&f.orchestrator, "Bytes", "printf '\\377\\376 done'").await;

    let missing = wait_until(&f.orchestrator, &missing.id, TaskState::is_final).await;
    assert_eq!(missing.state, TaskState::Failed);
    assert!(missing.reason.unwrap().contains("command not found"));

    let slow = wait_until(&f.orchestrator, &slow.id, TaskState::is_final).await;
    assert_eq!(slow.state, TaskState::Failed);
    assert!(slow.reason.unwrap().contains("time limit"));

    let nothing = wait_until(&f.orchestrator, &nothing.id, TaskState::is_final).await;
    assert_eq!(nothing.state, TaskState::NoChanges);

    let binary = wait_until(&f.orchestrator, &binary.id, TaskState::is_final).await;
    assert_eq!(binary.state, TaskState::NoChanges);
    let events = f
        .orchestrator
        .store()
        .events(EventQuery {
            task_id: Some(binary.id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let output = events.iter().find(|e| e.kind == "output").unwrap();
    assert_eq!(output.payload["text"], "\u{fffd}\u{fffd} done");
    let finished = events
        .iter()
        .find(|e| e.kind == "command_finished")
        .unwrap();
    let blob = f
        .orchestrator
        .store()
        .blob(finished.payload["output_blob"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blob, b"\xff\xfe done", "the blob keeps the raw bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_deny_and_remove() {
    let f = start(TempRepo::new(), "").await;
    let running = create(&f.orchestrator, "Long", "sleep 30").await;
    wait_until(&f.orchestrator, &running.id, |s| s == TaskState::Running).await;
    let cancelled = f
        .orchestrator
        .cancel_task(&running.id, user())
        .await
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    let again = f
        .orchestrator
        .cancel_task(&running.id, user())
        .await
        .unwrap_err();
    assert!(again.to_string().contains("cannot be cancelled"));

    let denied = create(&f.orchestrator, "Edit", "echo x >> README.md").await;
    wait_until(&f.orchestrator, &denied.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    let outcome = f
        .orchestrator
        .decide_for_task(
            &denied.id,
            None,
            Decision::Deny,
            ApprovalScope::Once,
            "tester",
            Some("not now".into()),
        )
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Rejected);
    assert_eq!(
        outcome.task.reason.as_deref(),
        Some("denied by tester: not now")
    );
    let worktree = outcome.task.worktree_path.clone().unwrap();
    assert!(
        std::path::Path::new(&worktree).exists(),
        "deny keeps the worktree for inspection"
    );
    let branch = f.repo.git(&["branch", "--list", &denied.id.branch()]);
    assert!(!branch.is_empty());

    let removed = f
        .orchestrator
        .remove_task(&denied.id, user())
        .await
        .unwrap();
    assert_eq!(removed.worktree_path, None);
    assert!(!std::path::Path::new(&worktree).exists());
    assert!(
        f.repo
            .git(&["branch", "--list", &denied.id.branch()])
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_anything_happens() {
    let f = start(TempRepo::new(), "").await;
    for (title, command) in [
        ("", Some("true")),
        ("a\nb", Some("true")),
        ("ok", Some("  ")),
        ("ok", None),
    ] {
        let err = f
            .orchestrator
            .create_task(
                NewTask {
                    title: title.into(),
                    command: command.map(String::from),
                    agent: None,
                    approve_command: false,
                    repo: None,
                },
                user(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, OrchestratorError::InvalidInput(_)), "{err}");
    }
    let with_secret = f
        .orchestrator
        .create_task(
            NewTask {
                title: "Configure".into(),
                command: Some("echo AKIAQWERTYUIOPASDFGH > key.txt".into()),
                agent: None,
                approve_command: false,
                repo: None,
            },
            user(),
        )
        .await
        .unwrap_err();
    assert!(
        with_secret.to_string().contains("aws-access-key-id"),
        "{with_secret}"
    );
    assert!(!with_secret.to_string().contains("AKIAQWERTYUIOPASDFGH"));
    assert!(f.orchestrator.store().tasks(None).await.unwrap().is_empty());
    // Only the repository's registration is in the log.
    let logged = f
        .orchestrator
        .store()
        .events(pushpals_store::EventQuery::default())
        .await
        .unwrap();
    let kinds: Vec<&str> = logged.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["repo_added"]);
    let unknown = TaskId::parse("nope").unwrap();
    assert!(f.orchestrator.cancel_task(&unknown, user()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_interrupts_live_tasks_and_runs_queued_ones() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let first = boot(&repo, data.path(), "max_parallel = 1").await;
    let live = create(&first, "Live", "sleep 30").await;
    // Only then the second: two drivers started together race for the one
    // slot, and the second could win it.
    wait_until(&first, &live.id, |s| s == TaskState::Running).await;
    let queued = create(&first, "Queued", "echo queued > q.txt").await;
    // Let the old driver write its last event (command_started) before the
    // "crash": two orchestrators never share a data dir outside this test.
    for _ in 0..500 {
        if kinds(&first, &live.id)
            .await
            .iter()
            .any(|k| k == "command_started")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        first.store().task(&queued.id).await.unwrap().state,
        TaskState::Queued
    );
    drop(first);

    // A new orchestrator over the same data, as after a crash. The old
    // drivers still hold the old store; the new one takes over.
    let second = boot(&repo, data.path(), "max_parallel = 1").await;
    let live = second.store().task(&live.id).await.unwrap();
    assert_eq!(live.state, TaskState::Interrupted);
    assert!(
        live.reason
            .unwrap()
            .contains("stopped while the task was running")
    );
    assert!(std::path::Path::new(&live.worktree_path.unwrap()).exists());
    let queued = wait_until(&second, &queued.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(queued.state, TaskState::AwaitingApproval);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_goes_to_a_blob_and_only_its_start_to_events() {
    let f = start(TempRepo::new(), "").await;
    // 600 KiB of output: more than events carry, all of it in the blob.
    let task = create(
        &f.orchestrator,
        "Loud",
        "head -c 614400 /dev/zero | tr '\\0' 'x'",
    )
    .await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::NoChanges);
    let events = f
        .orchestrator
        .store()
        .events(EventQuery {
            task_id: Some(task.id.clone()),
            limit: Some(10_000),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let inline: usize = events
        .iter()
        .filter(|e| e.kind == "output")
        .map(|e| e.payload["text"].as_str().unwrap().len())
        .sum();
    assert!(
        inline < 614_400,
        "all output went into events ({inline} bytes)"
    );
    assert!(
        inline >= 256 * 1024,
        "events carry the start of the output ({inline} bytes)"
    );
    assert!(
        events
            .iter()
            .any(|e| e.payload["continues_in_blob"] == true)
    );
    let finished = events
        .iter()
        .find(|e| e.kind == "command_finished")
        .unwrap();
    assert_eq!(finished.payload["output_bytes"], 614_400);
    let blob = f
        .orchestrator
        .store()
        .blob(finished.payload["output_blob"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blob.len(), 614_400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_task_can_be_continued_in_its_worktree_and_on_its_branch() {
    let f = start(TempRepo::new(), "").await;
    // A failed run, then a continued one that fixes it.
    let task = create(
        &f.orchestrator,
        "Rename",
        "sed -i s/foo/bar/ src/lib.rs && false",
    )
    .await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::Failed);
    let continued = f
        .orchestrator
        .continue_task(
            &task.id,
            Some("echo done >> README.md".into()),
            false,
            user(),
        )
        .await
        .unwrap();
    assert_eq!(continued.reason, None);
    let task = wait_until(&f.orchestrator, &task.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    let diff = f.orchestrator.diff(&task.id).await.unwrap();
    assert_eq!(
        diff.diff.files.len(),
        2,
        "both runs' changes are the task's"
    );
    let first = f
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
        .unwrap()
        .task;
    assert_eq!(first.state, TaskState::Committed);

    // A committed task continued: a second commit on top of the first.
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
        s == TaskState::AwaitingApproval
    })
    .await;
    let second = f
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
        .unwrap()
        .task;
    let parent = f.repo.git(&[
        "rev-parse",
        &format!("{}~1", second.commit_sha.clone().unwrap()),
    ]);
    assert_eq!(Some(parent), first.commit_sha);

    // A run that changes nothing new ends as no_changes, not a second commit.
    f.orchestrator
        .continue_task(&task.id, Some("true".into()), false, user())
        .await
        .unwrap();
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::NoChanges);

    // A live task cannot be continued; nor one whose worktree is gone.
    let live = create(&f.orchestrator, "Long", "sleep 30").await;
    wait_until(&f.orchestrator, &live.id, |s| s == TaskState::Running).await;
    let err = f
        .orchestrator
        .continue_task(&live.id, Some("true".into()), false, user())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only an ended task"), "{err}");
    f.orchestrator.remove_task(&task.id, user()).await.unwrap();
    let err = f
        .orchestrator
        .continue_task(&task.id, Some("true".into()), false, user())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("worktree was removed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_middle_of_making_a_worktree_leaves_nothing_in_the_way() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    // The state a server killed during `git worktree add` leaves: the task
    // preparing, its branch made, and git's entry for the worktree half
    // written.
    let id = TaskId::parse("cut12345").unwrap();
    {
        let store =
            pushpals_store::Store::open(data.path(), pushpals_store::Durability::Normal).unwrap();
        let task_id = id.clone();
        let (path, home) = (
            std::fs::canonicalize(&repo.path)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            data.path().to_string_lossy().into_owned(),
        );
        store
            .write(move |tx| {
                tx.add_repository(
                    &pushpals_store::NewRepository {
                        name: "repo",
                        path: &path,
                        origin: None,
                        branch: None,
                        home: &home,
                    },
                    pushpals_core::Actor::Orchestrator,
                )?;
                tx.insert_task(
                    pushpals_store::TaskRow {
                        id: &task_id,
                        repo: "repo",
                        title: "Cut",
                        command: Some("echo again >> README.md"),
                        agent: None,
                        sandbox: serde_json::Value::Null,
                    },
                    user(),
                )?;
                tx.transition(
                    &task_id,
                    TaskState::Preparing,
                    pushpals_store::TaskUpdate::default(),
                    user(),
                    serde_json::Value::Null,
                )
            })
            .await
            .unwrap();
    }
    let worktree = data.path().join("worktrees/cut12345");
    repo.git(&[
        "worktree",
        "add",
        "--quiet",
        "-b",
        "pushpals/cut12345",
        worktree.to_str().unwrap(),
    ]);
    std::fs::write(repo.path.join(".git/worktrees/cut12345/commondir"), "").unwrap();

    let orchestrator = boot(&repo, data.path(), "").await;
    let cut = orchestrator.store().task(&id).await.unwrap();
    assert_eq!(cut.state, TaskState::Interrupted);
    // Other tasks are not blocked by the broken entry.
    let other = create(&orchestrator, "Other", "echo other > other.txt").await;
    let other = wait_until(&orchestrator, &other.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(
        other.state,
        TaskState::AwaitingApproval,
        "{:?}",
        other.reason
    );
    // And the cut task starts afresh when retried.
    orchestrator
        .continue_task(&id, Some("echo again >> README.md".into()), false, user())
        .await
        .unwrap();
    let cut = wait_until(&orchestrator, &id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(cut.state, TaskState::AwaitingApproval, "{:?}", cut.reason);
}
