//! What repositories on one server share and what each keeps to itself:
//! the `max_parallel` slots, shared fairly; a repository's policy
//! tightening, kept in it; and an upgraded one-repository data dir, whose
//! queued work waits for its repository.

use super::repositories::{add, task_in};
use super::support::{start, wait_until};
use pushpals_core::TaskState;
use pushpals_orchestrator::Orchestrator;
use pushpals_test_support::TempRepo;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_repository_does_not_keep_another_waiting_behind_its_whole_queue() {
    let f = start(TempRepo::new(), "max_parallel = 1\n").await;
    let orchestrator = &f.orchestrator;
    let busy = orchestrator.repositories().all()[0].name().to_owned();
    let quiet_repo = TempRepo::new();
    let quiet_path = std::fs::canonicalize(&quiet_repo.path).unwrap();
    assert_eq!(
        add(
            orchestrator,
            quiet_path.to_str().unwrap(),
            Some("quiet"),
            None
        )
        .await
        .unwrap(),
        "quiet"
    );
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            task_in(orchestrator, &busy, "sleep 0.3; echo x > x.txt")
                .await
                .id,
        );
    }
    let quiet = task_in(orchestrator, "quiet", "echo y > y.txt").await;
    ids.push(quiet.id.clone());
    for id in &ids {
        wait_until(orchestrator, id, |s| {
            s.is_final() || s == TaskState::AwaitingApproval
        })
        .await;
    }
    // The order tasks got the one slot: when each began preparing.
    let events = orchestrator
        .store()
        .events(pushpals_store::EventQuery {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
    let started: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "state_changed" && e.payload["to"] == "preparing")
        .filter_map(|e| e.task_id.clone())
        .map(|id| {
            if id == quiet.id.as_str() {
                "quiet".to_owned()
            } else {
                "busy".to_owned()
            }
        })
        .collect();
    assert_eq!(started, ["busy", "quiet", "busy", "busy", "busy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repositorys_policy_tightening_stays_in_that_repository() {
    let strict = TempRepo::new();
    strict.write(
        "pushpals.toml",
        "[[policy.rule]]\nprograms = [\"touch\"]\ndecision = \"deny\"\nreason = \"no touch here\"\n",
    );
    strict.commit_all("a stricter policy");
    let f = start(strict, "").await;
    let orchestrator = &f.orchestrator;
    let strict_name = orchestrator.repositories().all()[0].name().to_owned();
    let lax = TempRepo::new();
    let lax_path = std::fs::canonicalize(&lax.path).unwrap();
    add(orchestrator, lax_path.to_str().unwrap(), Some("lax"), None)
        .await
        .unwrap();
    let denied = task_in(orchestrator, &strict_name, "touch made.txt").await;
    let allowed = task_in(orchestrator, "lax", "touch made.txt").await;
    let denied = wait_until(orchestrator, &denied.id, |s| s.is_final()).await;
    let allowed = wait_until(orchestrator, &allowed.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(denied.state, TaskState::Failed);
    assert!(
        denied
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("no touch here"),
        "{:?}",
        denied.reason
    );
    assert_eq!(
        allowed.state,
        TaskState::AwaitingApproval,
        "{:?}",
        allowed.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_data_dir_keeps_its_queued_work_until_its_repository_is_served() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    {
        // What the last one-repository version left: its schema and a
        // queued task.
        let mut conn = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
        pushpals_store::schema::migrations_through(10)
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO tasks (id, seq, title, command, state, branch, created_at, updated_at) \
             VALUES ('old12345', 1, 'Old work', 'echo old > old.txt', 'queued', 'pushpals/old12345', 't', 't')",
            [],
        )
        .unwrap();
    }
    let old = pushpals_core::TaskId::parse("old12345").unwrap();
    // Started without naming its repository: the task waits; nothing fails.
    {
        let orchestrator = Orchestrator::start(
            pushpals_store::Store::open(data.path(), pushpals_store::Durability::Normal).unwrap(),
            None,
            Arc::new(pushpals_sandbox::HostRunner),
            pushpals_orchestrator::Settings::default(),
            pushpals_policy::Policy::builtin().unwrap(),
            data.path(),
        )
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let waiting = orchestrator.store().task(&old).await.unwrap();
        assert_eq!(waiting.state, TaskState::Queued);
        assert_eq!(waiting.repo, "");
    }
    // Served again with its checkout (`serve --repo PATH`): the repository
    // takes the task over, keeps the data dir as its home, and the task runs.
    let orchestrator = super::support::boot(&repo, data.path(), "").await;
    let served = orchestrator.repositories().all();
    assert_eq!(served.len(), 1);
    assert_eq!(std::path::Path::new(&served[0].record.home), data.path());
    let ran = wait_until(&orchestrator, &old, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(ran.state, TaskState::AwaitingApproval, "{:?}", ran.reason);
    assert_eq!(ran.repo, served[0].name());
}
