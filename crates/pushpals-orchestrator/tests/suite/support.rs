//! An orchestrator on a temporary repository and store, and helpers to
//! drive it.

use pushpals_core::{Actor, Event, Task, TaskId, TaskState};
use pushpals_orchestrator::{NewTask, Orchestrator, Settings};
use pushpals_policy::Policy;
use pushpals_sandbox::{BwrapConfig, BwrapRunner, HostRunner, Limits, Runner};
use pushpals_store::{Durability, EventQuery, Store};
use pushpals_test_support::TempRepo;
use pushpals_workspace::Repo;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Fixture {
    pub(crate) repo: TempRepo,
    pub(crate) _data: tempfile::TempDir,
    pub(crate) orchestrator: Arc<Orchestrator>,
}

pub(crate) async fn start(repo: TempRepo, settings: &str) -> Fixture {
    let data = tempfile::tempdir().unwrap();
    let orchestrator = boot(&repo, data.path(), settings).await;
    Fixture {
        repo,
        _data: data,
        orchestrator,
    }
}

pub(crate) async fn boot(
    repo: &TempRepo,
    data: &std::path::Path,
    settings: &str,
) -> Arc<Orchestrator> {
    boot_with(repo, data, settings, Arc::new(HostRunner)).await
}

/// The real bubblewrap sandbox, as `serve` uses it (without the helper
/// binary, which this crate does not build).
pub(crate) fn sandbox() -> Arc<dyn Runner> {
    Arc::new(
        BwrapRunner::new(
            BwrapConfig {
                limits: Limits::default(),
                toolchain_paths: Vec::new(),
                home_binds: Vec::new(),
                toolchain_env: Vec::new(),
                helper: None,
                state_dir: None,
                fresh_per_command: false,
            }
            .with_default_toolchains(),
        )
        .unwrap(),
    )
}

/// Like [`start`], with the real sandbox.
pub(crate) async fn start_sandboxed(repo: TempRepo, settings: &str) -> Fixture {
    let data = tempfile::tempdir().unwrap();
    let orchestrator = boot_with(&repo, data.path(), settings, sandbox()).await;
    Fixture {
        repo,
        _data: data,
        orchestrator,
    }
}

pub(crate) async fn boot_with(
    repo: &TempRepo,
    data: &std::path::Path,
    settings: &str,
    runner: Arc<dyn Runner>,
) -> Arc<Orchestrator> {
    let store = Store::open(data, Durability::Normal).unwrap();
    let git = Repo::open(&repo.path).await.unwrap();
    Orchestrator::start(
        store,
        Some(git),
        runner,
        Settings::from_toml(settings).unwrap(),
        Policy::builtin().unwrap(),
        data,
    )
    .await
    .unwrap()
}

pub(crate) fn user() -> Actor {
    Actor::User("tester".into())
}

pub(crate) async fn create(orchestrator: &Arc<Orchestrator>, title: &str, command: &str) -> Task {
    orchestrator
        .create_task(
            NewTask {
                title: title.into(),
                command: Some(command.into()),
                agent: None,
                approve_command: false,
                repo: None,
            },
            user(),
        )
        .await
        .unwrap()
}

pub(crate) async fn wait_until(
    orchestrator: &Orchestrator,
    id: &TaskId,
    done: impl Fn(TaskState) -> bool,
) -> Task {
    for _ in 0..1500 {
        let task = orchestrator.store().task(id).await.unwrap();
        if done(task.state) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} did not reach the expected state");
}

/// The task's events, oldest first.
pub(crate) async fn task_events(orchestrator: &Orchestrator, id: &TaskId) -> Vec<Event> {
    orchestrator
        .store()
        .events(EventQuery {
            task_id: Some(id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap()
}

pub(crate) async fn kinds(orchestrator: &Orchestrator, id: &TaskId) -> Vec<String> {
    task_events(orchestrator, id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect()
}
