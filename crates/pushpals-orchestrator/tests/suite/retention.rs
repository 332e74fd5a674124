//! Clean-up: old worktrees go, merged branches are pruned, live tasks stay.

use super::support::{create, start, user, wait_until};
use pushpals_core::{Decision, TaskState};
use pushpals_orchestrator::ApprovalScope;
use pushpals_test_support::TempRepo;
use std::path::Path;

#[tokio::test]
async fn gc_removes_ended_worktrees_prunes_merged_branches_and_spares_live_tasks() {
    let f = start(TempRepo::new(), "").await;
    let done = create(&f.orchestrator, "Add notes", "echo hello > notes.txt").await;
    wait_until(&f.orchestrator, &done.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    f.orchestrator
        .decide_for_task(
            &done.id,
            None,
            Decision::Approve,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    let done = f.orchestrator.store().task(&done.id).await.unwrap();
    assert_eq!(done.state, TaskState::Committed);
    let waiting = create(&f.orchestrator, "Ask first", "frobnicate --all").await;
    wait_until(&f.orchestrator, &waiting.id, |s| s == TaskState::Waiting).await;

    let space = f.orchestrator.space().await.unwrap();
    assert!(space.database_bytes > 0 && space.worktree_bytes > 0);
    assert_eq!(space.tasks.len(), 2);

    // A look first: nothing moves.
    let look = f.orchestrator.gc(0, true, user()).await.unwrap();
    assert_eq!(look.worktrees.len(), 1);
    assert_eq!(look.worktrees[0].0, done.id);
    let path = done.worktree_path.clone().unwrap();
    assert!(Path::new(&path).exists());

    let report = f.orchestrator.gc(0, false, user()).await.unwrap();
    assert_eq!(report.worktrees.len(), 1);
    assert!(report.bytes_freed > 0);
    assert!(!Path::new(&path).exists());
    assert!(report.branches.is_empty(), "not merged yet");
    let waiting = f.orchestrator.store().task(&waiting.id).await.unwrap();
    assert_eq!(waiting.state, TaskState::Waiting);
    assert!(
        Path::new(waiting.worktree_path.as_deref().unwrap()).exists(),
        "a live task keeps its worktree"
    );
    assert_eq!(
        f.orchestrator
            .gc(30, false, user())
            .await
            .unwrap()
            .worktrees
            .len(),
        0
    );

    // Once the base branch holds the commit, the task branch goes.
    f.repo.git(&["merge", "-q", "--ff-only", &done.branch]);
    let report = f.orchestrator.gc(0, false, user()).await.unwrap();
    assert_eq!(report.branches, vec![done.branch.clone()]);
    assert!(f.repo.git(&["branch", "--list", &done.branch]).is_empty());
    let events = super::support::kinds(&f.orchestrator, &done.id).await;
    assert!(events.contains(&"worktree_removed".to_owned()));
}
