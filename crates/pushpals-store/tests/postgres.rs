//! What only PostgreSQL has (a newer schema refused, one writer per
//! database, a URL that does not answer) and moving a store between the two
//! backends (`store migrate`), chain head identical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;

use backends::TestDb;
use pushpals_core::{Actor, ApprovalAction, EventKind, GrantKind, NewEvent, TaskId};
use pushpals_store::migrate::migrate;
use pushpals_store::{Database, Durability, NewRepository, Store, StoreError, TaskRow};
use serde_json::json;

/// A SQLite store with a bit of everything, and its task.
async fn a_store_with_history(db: &TestDb) -> (Store, TaskId) {
    let store = db.open(Durability::Normal);
    let id = TaskId::parse("task-1").unwrap();
    let task = id.clone();
    store
        .write(move |tx| {
            tx.add_repository(
                &NewRepository {
                    name: "app",
                    path: "/srv/app",
                    origin: Some("https://example.test/app.git"),
                    branch: None,
                    home: "/data",
                },
                Actor::Orchestrator,
            )?;
            tx.insert_task(
                TaskRow {
                    id: &task,
                    repo: "app",
                    title: "Rename foo",
                    command: Some("true"),
                    agent: None,
                    sandbox: json!({ "backend": "bubblewrap" }),
                },
                Actor::User("admin".into()),
            )?;
            let blob = tx.put_blob(b"\x00\xffbinary output")?;
            tx.append(NewEvent::for_task(
                &task,
                Actor::Orchestrator,
                EventKind::Output,
                json!({ "blob": blob, "text": "caf\u{e9} \u{202e} ok" }),
            ))?;
            tx.request_approval(&task, ApprovalAction::Commit, "Commit 1 file", json!({}))?;
            tx.insert_token("phone", "hash-phone", "read,approve")?;
            tx.set_grant("app", GrantKind::AutoCommit, true, "admin")?;
            tx.record_duration("app", "check:test", "abc", 1.5, 10)?;
            tx.record_test_result("app", "tests::it", "abc", 1, 0)?;
            tx.record_chat(
                "phone",
                &[(pushpals_store::chat::Speaker::Person, "status")],
            )?;
            tx.touch_readiness()
        })
        .await
        .unwrap();
    (store, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_moves_to_postgres_with_the_same_chain_head_and_goes_on_there() {
    let sqlite = TestDb::sqlite();
    let (store, id) = a_store_with_history(&sqlite).await;
    let head = store.verify_chain().await.unwrap();
    drop(store);
    let pg = TestDb::postgres();
    let report = migrate(&sqlite.database(), &pg.database()).unwrap();
    assert!(report.before.ok && report.after.ok);
    assert_eq!(report.after.head_hash, head.head_hash);
    assert_eq!(report.after.head_id, head.head_id);
    let rows: std::collections::HashMap<_, _> = report.rows.into_iter().collect();
    assert_eq!(rows["events"], head.checked);
    assert_eq!(rows["tasks"], 1);

    let moved = pg.open(Durability::Normal);
    let verified = moved.verify_chain().await.unwrap();
    assert_eq!(verified.head_hash, head.head_hash);
    let task = moved.task(&id).await.unwrap();
    assert_eq!(task.title, "Rename foo");
    assert_eq!(task.repo, "app");
    let events = moved.task_events(&id).await.unwrap();
    let output = events.iter().find(|e| e.kind == "output").unwrap();
    assert_eq!(output.payload["text"], "caf\u{e9} \u{202e} ok");
    let blob = output.payload["blob"].as_str().unwrap().to_owned();
    assert_eq!(
        moved.blob(&blob).await.unwrap().unwrap(),
        b"\x00\xffbinary output"
    );
    assert!(moved.token("hash-phone").await.unwrap().is_some());
    assert_eq!(moved.grants("app").await.unwrap().len(), 1);
    assert_eq!(moved.chat_history("phone", 10).await.unwrap().len(), 1);
    // Ids PostgreSQL hands out go on after the copied ones, and the chain
    // goes on from the copied head.
    let before = moved.approvals(None, false).await.unwrap()[0].id;
    let (approval, token, event) = moved
        .write(move |tx| {
            let approval = tx.request_approval(&id, ApprovalAction::Push, "Push it", json!({}))?;
            let token = tx.insert_token("laptop", "hash-laptop", "read")?;
            let event = tx.append(NewEvent::for_task(
                &id,
                Actor::Orchestrator,
                EventKind::Error,
                json!({}),
            ))?;
            Ok((approval, token, event))
        })
        .await
        .unwrap();
    assert!(approval.id > before);
    assert_eq!(token, 2);
    assert_eq!(event.id, verified.head_id.unwrap() + 2);
    assert!(moved.verify_chain().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_events_move_with_their_chain_head() {
    let sqlite = TestDb::sqlite();
    let (store, id) = a_store_with_history(&sqlite).await;
    for batch in 0..100 {
        let id = id.clone();
        store
            .write(move |tx| {
                for n in 0..1000 {
                    tx.append(NewEvent::for_task(
                        &id,
                        Actor::Worker(id.clone()),
                        EventKind::Output,
                        json!({ "text": format!("line {batch}:{n}") }),
                    ))?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let head = store.verify_chain().await.unwrap();
    assert!(head.checked > 100_000);
    drop(store);
    let pg = TestDb::postgres();
    let report = migrate(&sqlite.database(), &pg.database()).unwrap();
    assert_eq!(report.after.checked, head.checked);
    assert_eq!(report.after.head_hash, head.head_hash);
    let moved = pg.open(Durability::Normal);
    assert_eq!(
        moved.verify_chain().await.unwrap().head_hash,
        head.head_hash
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_into_a_database_that_holds_a_store_is_refused_and_changes_nothing() {
    let sqlite = TestDb::sqlite();
    let (store, _) = a_store_with_history(&sqlite).await;
    drop(store);
    let pg = TestDb::postgres();
    let (other, _) = a_store_with_history(&pg).await;
    let before = other.verify_chain().await.unwrap();
    drop(other);
    let error = migrate(&sqlite.database(), &pg.database()).unwrap_err();
    assert!(matches!(error, StoreError::Migrate(_)), "{error}");
    assert!(error.to_string().contains("empty database"), "{error}");
    let other = pg.open(Durability::Normal);
    assert_eq!(other.verify_chain().await.unwrap(), before);
    // And back the other way into a fresh data directory: the same head.
    drop(other);
    let back = TestDb::sqlite();
    let report = migrate(&pg.database(), &back.database()).unwrap();
    assert_eq!(report.after.head_hash, before.head_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_chain_is_broken_is_not_copied() {
    let sqlite = TestDb::sqlite();
    let (store, _) = a_store_with_history(&sqlite).await;
    drop(store);
    sqlite
        .exec(
            "DROP TRIGGER events_no_update; \
             UPDATE events SET payload = '{\"text\":\"forged\"}' WHERE kind = 'output';",
        )
        .unwrap();
    let pg = TestDb::postgres();
    let error = migrate(&sqlite.database(), &pg.database()).unwrap_err();
    assert!(error.to_string().contains("broken at event"), "{error}");
    let target = pg.open(Durability::Normal);
    assert_eq!(target.last_event_id().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_database_is_refused() {
    let pg = TestDb::postgres();
    let first = pg.open(Durability::Normal);
    let error = Store::open_database(&pg.database(), Durability::Normal).unwrap_err();
    assert!(matches!(error, StoreError::DatabaseInUse(_)), "{error}");
    assert!(error.to_string().contains("already writes"), "{error}");
    // Once the first one is gone, the database can be opened again.
    drop(first);
    let again = Store::open_database(&pg.database(), Durability::Normal);
    assert!(again.is_ok(), "{:?}", again.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_schema_from_a_newer_version_is_refused_untouched() {
    let pg = TestDb::postgres();
    drop(pg.open(Durability::Normal));
    pg.exec("UPDATE pushpals_schema SET version = 99; CREATE TABLE future (x BIGINT);")
        .unwrap();
    let error = Store::open_database(&pg.database(), Durability::Normal).unwrap_err();
    assert!(
        matches!(error, StoreError::TooNew { found: 99, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade pushpals"), "{error}");
    assert!(pg.exec("SELECT x FROM future").is_ok());
}

#[test]
fn a_database_that_does_not_answer_is_named_without_its_password() {
    let nowhere = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql://pushpals:hunter2@{}/pushpals",
        nowhere.path().to_string_lossy().replace('/', "%2F")
    );
    let error = Store::open_database(&Database::Postgres(url), Durability::Normal).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("does not answer"), "{message}");
    assert!(message.contains("pushpals:***@"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    let error = Store::open_database(
        &Database::Postgres("postgres://[::1".into()),
        Durability::Normal,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("not a PostgreSQL URL"),
        "{error}"
    );
}
