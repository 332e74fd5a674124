//! Repositories in the store: the one-repository upgrade, names and paths
//! taken once, removal refused while tasks need the repository, and tasks
//! only in registered repositories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;

use backends::{TestDb, on_both_backends};

use pushpals_core::{Actor, GrantKind, TaskId, TaskState};
use pushpals_store::findings::{Finding, FindingFilter};
use pushpals_store::{Durability, NewRepository, Store, StoreError, TaskRow, TaskUpdate};

fn repo<'a>(name: &'a str, path: &'a str) -> NewRepository<'a> {
    NewRepository {
        name,
        path,
        origin: None,
        branch: None,
        home: "/data",
    }
}

fn finding(fingerprint: &str) -> Finding {
    Finding {
        repo: String::new(),
        fingerprint: fingerprint.into(),
        kind: "secret".into(),
        severity: "high".into(),
        title: "a key".into(),
        file: Some("a.txt".into()),
        line: Some(1),
        evidence: serde_json::Value::Null,
        state: "open".into(),
        first_seen: String::new(),
        last_seen: String::new(),
        reason: None,
    }
}

async fn add_task(store: &Store, id: &str, repo: &'static str) -> Result<(), StoreError> {
    let id = TaskId::parse(id).unwrap();
    store
        .write(move |tx| {
            tx.insert_task(
                TaskRow {
                    id: &id,
                    repo,
                    title: "Work",
                    command: Some("true"),
                    agent: None,
                    sandbox: serde_json::Value::Null,
                },
                Actor::User("admin".into()),
            )
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_one_repository_data_dir_upgrades_in_place_and_its_rows_go_to_the_first_repository() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What the last one-repository version wrote: its schema, a task,
        // a grant and a finding.
        let mut conn = rusqlite::Connection::open(dir.path().join("pushpals.db")).unwrap();
        pushpals_store::schema::migrations_through(10)
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO tasks (id, seq, title, command, state, branch, created_at, updated_at) \
             VALUES ('old-1', 1, 'Old task', 'true', 'committed', 'pushpals/old-1', 't', 't')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO grants (kind, granted_by, granted_at) VALUES ('auto-commit', 'admin', 't')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO findings (fingerprint, kind, severity, title, evidence, state, first_seen, last_seen) \
             VALUES ('fp1', 'secret', 'high', 'a key', 'null', 'open', 't', 't')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    let old = TaskId::parse("old-1").unwrap();
    assert_eq!(store.task(&old).await.unwrap().repo, "");
    assert!(store.write(|tx| tx.has_unowned_rows()).await.unwrap());
    let added = store
        .write(|tx| tx.add_repository(&repo("app", "/srv/app"), Actor::Orchestrator))
        .await
        .unwrap();
    assert_eq!(added.name, "app");
    assert_eq!(store.task(&old).await.unwrap().repo, "app");
    assert_eq!(store.grants("app").await.unwrap().len(), 1);
    let findings = store.findings(FindingFilter::default()).await.unwrap();
    assert_eq!(findings[0].repo, "app");
    let event = store
        .last_event_of_kind("repo_added")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.payload["adopted"], 3);
    // The second repository adopts nothing and has no grants.
    store
        .write(|tx| tx.add_repository(&repo("tool", "/srv/tool"), Actor::Orchestrator))
        .await
        .unwrap();
    assert!(store.grants("tool").await.unwrap().is_empty());
    assert!(store.verify_chain().await.unwrap().ok);
}

async fn a_name_or_path_is_registered_once(db: &TestDb) {
    let store = db.open(Durability::Normal);
    store
        .write(|tx| tx.add_repository(&repo("app", "/srv/app"), Actor::Orchestrator))
        .await
        .unwrap();
    let same_name = store
        .write(|tx| tx.add_repository(&repo("app", "/srv/other"), Actor::Orchestrator))
        .await
        .unwrap_err();
    assert!(matches!(same_name, StoreError::Duplicate(_)), "{same_name}");
    assert!(same_name.to_string().contains("/srv/app"), "{same_name}");
    let same_path = store
        .write(|tx| tx.add_repository(&repo("app2", "/srv/app"), Actor::Orchestrator))
        .await
        .unwrap_err();
    assert!(
        same_path
            .to_string()
            .contains("already registered as \"app\""),
        "{same_path}"
    );
    assert_eq!(store.repositories().await.unwrap().len(), 1);
}

async fn tasks_grants_and_findings_belong_to_one_registered_repository(db: &TestDb) {
    let store = db.open(Durability::Normal);
    let unknown = add_task(&store, "task-1", "nowhere").await.unwrap_err();
    assert!(
        matches!(unknown, StoreError::RepositoryNotFound(_)),
        "{unknown}"
    );
    assert!(
        unknown.to_string().contains("pushpals repo add"),
        "{unknown}"
    );
    assert!(store.tasks(None).await.unwrap().is_empty());
    let grant = store
        .write(|tx| tx.set_grant("nowhere", GrantKind::AutoCommit, true, "admin"))
        .await
        .unwrap_err();
    assert!(
        matches!(grant, StoreError::RepositoryNotFound(_)),
        "{grant}"
    );

    for (name, path) in [("app", "/srv/app"), ("tool", "/srv/tool")] {
        store
            .write(move |tx| tx.add_repository(&repo(name, path), Actor::Orchestrator))
            .await
            .unwrap();
    }
    store
        .write(|tx| tx.set_grant("app", GrantKind::AutoCommit, true, "admin"))
        .await
        .unwrap();
    assert_eq!(store.grants("app").await.unwrap().len(), 1);
    assert!(store.grants("tool").await.unwrap().is_empty());
    // The same fingerprint in two repositories is two findings.
    for name in ["app", "tool"] {
        store
            .write(move |tx| tx.record_findings(name, &["secret".into()], None, &[finding("fp")]))
            .await
            .unwrap();
    }
    let dismissed = store
        .write(|tx| tx.dismiss_finding("tool", "fp", "a test key"))
        .await
        .unwrap();
    assert!(dismissed);
    let open = store
        .findings(FindingFilter {
            state: Some("open".into()),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].repo, "app");
}

async fn a_repository_with_a_task_that_needs_it_cannot_be_removed(db: &TestDb) {
    let store = db.open(Durability::Normal);
    store
        .write(|tx| tx.add_repository(&repo("app", "/srv/app"), Actor::Orchestrator))
        .await
        .unwrap();
    store
        .write(|tx| tx.set_grant("app", GrantKind::AutoPush, true, "admin"))
        .await
        .unwrap();
    add_task(&store, "task-1", "app").await.unwrap();
    let busy = store
        .write(|tx| tx.remove_repository("app", false, Actor::User("admin".into())))
        .await
        .unwrap_err();
    assert!(matches!(busy, StoreError::RepositoryBusy { .. }), "{busy}");
    assert!(busy.to_string().contains("#1"), "{busy}");
    assert_eq!(store.repositories().await.unwrap().len(), 1);

    let id = TaskId::parse("task-1").unwrap();
    store
        .write(move |tx| {
            tx.transition(
                &id,
                TaskState::Cancelled,
                TaskUpdate::default(),
                Actor::User("admin".into()),
                serde_json::Value::Null,
            )
        })
        .await
        .unwrap();
    let removed = store
        .write(|tx| tx.remove_repository("app", false, Actor::User("admin".into())))
        .await
        .unwrap();
    assert_eq!(removed.name, "app");
    assert!(store.repositories().await.unwrap().is_empty());
    // Its history stays; its grants go (a new "app" starts with none).
    assert_eq!(store.tasks(None).await.unwrap()[0].repo, "app");
    store
        .write(|tx| tx.add_repository(&repo("app", "/srv/app"), Actor::Orchestrator))
        .await
        .unwrap();
    assert!(store.grants("app").await.unwrap().is_empty());
    let missing = store
        .write(|tx| tx.remove_repository("ghost", false, Actor::User("admin".into())))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::RepositoryNotFound(_)),
        "{missing}"
    );
}

on_both_backends!(
    a_name_or_path_is_registered_once,
    tasks_grants_and_findings_belong_to_one_registered_repository,
    a_repository_with_a_task_that_needs_it_cannot_be_removed,
);
