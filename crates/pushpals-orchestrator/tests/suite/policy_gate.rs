//! The policy gate: deny, ask and the scopes of an approval.

use super::support::*;
use pushpals_core::{Decision, TaskState};
use pushpals_orchestrator::{ApprovalScope, OrchestratorError};
use pushpals_test_support::TempRepo;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denies_asks_and_remembers_approvals_for_the_task() {
    let repo = TempRepo::new();
    repo.write("pushpals.toml", "[checks]\ntest = \"frobnicate-check || true\"\n[[policy.rule]]\nprograms = [\"make\"]\ndecision = \"deny\"\nreason = \"no make here\"\n");
    repo.commit_all("checks and policy");
    let f = start(repo, "").await;

    // Deny: the step fails with policy's reason; nothing runs.
    let denied = create(&f.orchestrator, "Push", "echo x > out.txt && git push").await;
    let denied = wait_until(&f.orchestrator, &denied.id, TaskState::is_final).await;
    assert_eq!(denied.state, TaskState::Failed);
    assert!(
        denied
            .reason
            .as_deref()
            .unwrap()
            .contains("policy denies worker"),
        "{:?}",
        denied.reason
    );
    assert!(
        !kinds(&f.orchestrator, &denied.id)
            .await
            .iter()
            .any(|k| k == "command_started")
    );

    // The repository tightens: make is denied here.
    let make = create(&f.orchestrator, "Make", "make").await;
    let make = wait_until(&f.orchestrator, &make.id, TaskState::is_final).await;
    assert!(
        make.reason.as_deref().unwrap().contains("no make here"),
        "{:?}",
        make.reason
    );

    // Ask: the task waits; approving runs the command, then the check asks.
    let asked = create(
        &f.orchestrator,
        "Unknown tool",
        "frobnicate > made.txt || echo ran > made.txt",
    )
    .await;
    wait_until(&f.orchestrator, &asked.id, |s| s == TaskState::Waiting).await;
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(asked.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].summary.contains("no rule covers `frobnicate`"),
        "{}",
        pending[0].summary
    );
    f.orchestrator
        .decide_for_task(
            &asked.id,
            None,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    // The check asks too; deny it: the task fails with the person's reason.
    for _ in 0..500 {
        if !f
            .orchestrator
            .store()
            .approvals(Some(asked.id.clone()), true)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f.orchestrator
        .decide_for_task(
            &asked.id,
            None,
            Decision::Deny,
            ApprovalScope::Once,
            "tester",
            Some("not that check".into()),
        )
        .await
        .unwrap();
    let asked = wait_until(&f.orchestrator, &asked.id, TaskState::is_final).await;
    assert_eq!(asked.state, TaskState::Failed);
    assert!(
        asked
            .reason
            .as_deref()
            .unwrap()
            .contains("tester denied check:test"),
        "{:?}",
        asked.reason
    );
    assert!(asked.reason.as_deref().unwrap().contains("not that check"));
    let worktree = asked.worktree_path.unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{worktree}/made.txt")).unwrap(),
        "ran\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_waiting_task_withdraws_its_command_approval() {
    let f = start(TempRepo::new(), "").await;
    let task = create(&f.orchestrator, "Unknown", "frobnicate").await;
    wait_until(&f.orchestrator, &task.id, |s| s == TaskState::Waiting).await;
    f.orchestrator.cancel_task(&task.id, user()).await.unwrap();
    let approvals = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), false)
        .await
        .unwrap();
    assert_eq!(approvals[0].state, pushpals_core::ApprovalState::Withdrawn);
    assert_eq!(
        f.orchestrator.store().task(&task.id).await.unwrap().state,
        TaskState::Cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_allow_writes_a_rule_to_the_users_policy_and_applies_it() {
    let f = start(TempRepo::new(), "").await;
    let policy_file = f._data.path().join("config/policy.toml");
    f.orchestrator.set_user_policy_file(policy_file.clone());

    // A program by path cannot become a pattern: the approval stays pending.
    let by_path = create(&f.orchestrator, "Path", "./frob").await;
    wait_until(&f.orchestrator, &by_path.id, |s| s == TaskState::Waiting).await;
    let err = f
        .orchestrator
        .decide_for_task(
            &by_path.id,
            None,
            Decision::Approve,
            ApprovalScope::Always,
            "tester",
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OrchestratorError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("cannot always allow"), "{err}");
    assert_eq!(
        f.orchestrator
            .store()
            .approvals(Some(by_path.id.clone()), true)
            .await
            .unwrap()
            .len(),
        1
    );

    let first = create(
        &f.orchestrator,
        "First",
        "frobnicate --x > a.txt || echo a > a.txt",
    )
    .await;
    wait_until(&f.orchestrator, &first.id, |s| s == TaskState::Waiting).await;
    f.orchestrator
        .decide_for_task(
            &first.id,
            None,
            Decision::Approve,
            ApprovalScope::Always,
            "tester",
            None,
        )
        .await
        .unwrap();
    wait_until(&f.orchestrator, &first.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    let written = std::fs::read_to_string(&policy_file).unwrap();
    assert!(written.contains("programs = [\"frobnicate\"]"), "{written}");
    assert!(written.contains("chose \"always\""), "{written}");
    assert!(
        kinds(&f.orchestrator, &first.id)
            .await
            .iter()
            .any(|k| k == "policy_updated")
    );

    // The next task with the same program does not ask.
    let second = create(
        &f.orchestrator,
        "Second",
        "frobnicate --y > b.txt || echo b > b.txt",
    )
    .await;
    let second = wait_until(&f.orchestrator, &second.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval || s == TaskState::Waiting
    })
    .await;
    assert_eq!(second.state, TaskState::AwaitingApproval);
}
