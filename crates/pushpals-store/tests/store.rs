//! End-to-end tests of the store, each on a real SQLite file and on a real
//! PostgreSQL database (`backends`), plus SQLite's own upgrade tests.
//!
//! Over 400 lines: one test per promise of the store (chain, group commit,
//! approvals, tokens, blobs), on one real database helper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;

use backends::{TestDb, on_both_backends};

use pushpals_core::{Actor, ApprovalAction, Decision, EventKind, NewEvent, TaskId, TaskState};
use pushpals_store::{Durability, EventQuery, Store, StoreError, TaskRow, TaskUpdate};
use serde_json::json;

fn task_id(n: u8) -> TaskId {
    TaskId::parse(&format!("task-{n}")).unwrap()
}

/// A store whose tasks go in repository `app`, registered as a row (its
/// `repo_added` event would shift the event counts these tests check;
/// `tests/repositories.rs` tests registering).
async fn store_with_app(db: &TestDb) -> Store {
    let store = db.open(Durability::Normal);
    db.exec(
        "INSERT INTO repositories (name, path, home, added_by, added_at) \
         VALUES ('app', '/srv/app', '/data', 'orchestrator', 't')",
    )
    .unwrap();
    store
}

async fn store_with_task(db: &TestDb) -> (Store, TaskId) {
    let store = store_with_app(db).await;
    let id = task_id(1);
    let insert_id = id.clone();
    store
        .write(move |tx| {
            tx.insert_task(
                TaskRow {
                    id: &insert_id,
                    repo: "app",
                    title: "Rename foo",
                    command: Some("true"),
                    agent: None,
                    sandbox: serde_json::Value::Null,
                },
                Actor::User("admin".into()),
            )
        })
        .await
        .unwrap();
    (store, id)
}

async fn transitions_are_persisted_and_evented(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let moved = id.clone();
    let task = store
        .write(move |tx| {
            tx.transition(
                &moved,
                TaskState::Preparing,
                TaskUpdate {
                    base_commit: Some("abc".into()),
                    ..TaskUpdate::default()
                },
                Actor::Orchestrator,
                json!(null),
            )
        })
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Preparing);
    assert_eq!(task.base_commit.as_deref(), Some("abc"));
    let events = store
        .events(EventQuery {
            task_id: Some(id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["task_created", "state_changed"]);
    assert_eq!(events[1].payload["from"], "queued");
    assert_eq!(events[1].payload["to"], "preparing");
}

async fn an_invalid_transition_changes_nothing_and_appends_nothing(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let moved = id.clone();
    let err = store
        .write(move |tx| {
            tx.append(NewEvent::for_task(
                &moved,
                Actor::Orchestrator,
                EventKind::Error,
                json!({}),
            ))?;
            tx.transition(
                &moved,
                TaskState::Committed,
                TaskUpdate::default(),
                Actor::Orchestrator,
                json!(null),
            )
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition(_)), "{err}");
    assert_eq!(store.task(&id).await.unwrap().state, TaskState::Queued);
    let events = store.events(EventQuery::default()).await.unwrap();
    assert_eq!(
        events.len(),
        1,
        "the failed request's event was rolled back"
    );
    // The chain continues cleanly after the rollback.
    store
        .write(move |tx| {
            tx.append(NewEvent::for_task(
                &id,
                Actor::Orchestrator,
                EventKind::Error,
                json!({}),
            ))
        })
        .await
        .unwrap();
    assert!(store.verify_chain().await.unwrap().ok);
}

async fn deciding_twice_is_refused(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let approval = store
        .write(move |tx| tx.request_approval(&id, ApprovalAction::Commit, "commit it", json!({})))
        .await
        .unwrap();
    let approval_id = approval.id;
    store
        .write(move |tx| tx.decide_approval(approval_id, Decision::Approve, "admin", Some("fine")))
        .await
        .unwrap();
    let err = store
        .write(move |tx| tx.decide_approval(approval_id, Decision::Deny, "admin", None))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("approval {approval_id} was already approved")
    );
    let missing = store
        .write(|tx| tx.decide_approval(999, Decision::Deny, "admin", None))
        .await;
    assert!(matches!(missing, Err(StoreError::ApprovalNotFound(999))));
}

async fn concurrent_writers_share_commits_and_keep_one_chain(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let mut live = store.subscribe();
    let mut handles = Vec::new();
    for n in 0..200 {
        let store = store.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    tx.append(NewEvent::for_task(
                        &id,
                        Actor::Orchestrator,
                        EventKind::Output,
                        json!({ "n": n }),
                    ))
                })
                .await
                .unwrap()
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let report = store.verify_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 201);
    assert_eq!(report.head_id, Some(201));
    // Subscribers see every committed event, in id order.
    let mut last = 1;
    for _ in 0..200 {
        let event = live.recv().await.unwrap();
        assert_eq!(event.id, last + 1);
        last = event.id;
    }
}

async fn reopening_continues_the_chain(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    drop(store);
    let store = db.open(Durability::Full);
    let event = store
        .write(move |tx| {
            tx.append(NewEvent::for_task(
                &id,
                Actor::Orchestrator,
                EventKind::Error,
                json!({}),
            ))
        })
        .await
        .unwrap();
    assert_eq!(event.id, 2);
    assert!(store.verify_chain().await.unwrap().ok);
}

async fn blobs_are_content_addressed(db: &TestDb) {
    let store = db.open(Durability::Normal);
    let (a, b) = store
        .write(|tx| {
            Ok((
                tx.put_blob(b"\xff\xfe not utf-8")?,
                tx.put_blob(b"\xff\xfe not utf-8")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        store.blob(&a).await.unwrap().unwrap(),
        b"\xff\xfe not utf-8"
    );
    assert_eq!(store.blob("00").await.unwrap(), None);
}

async fn tampering_is_named_by_verify_and_plain_updates_are_refused(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    for n in 0..3 {
        let id = id.clone();
        store
            .write(move |tx| {
                tx.append(NewEvent::for_task(
                    &id,
                    Actor::Orchestrator,
                    EventKind::Output,
                    json!({ "text": format!("line {n}") }),
                ))
            })
            .await
            .unwrap();
    }
    let refused = db.exec("UPDATE events SET payload = '{}' WHERE id = 3");
    assert!(refused.unwrap_err().contains("append-only"));
    let refused = db.exec("DELETE FROM events WHERE id = 4");
    assert!(refused.unwrap_err().contains("append-only"));
    let unguard = if db.pg.is_some() {
        "ALTER TABLE events DISABLE TRIGGER events_no_change"
    } else {
        "DROP TRIGGER events_no_update"
    };
    db.exec(&format!(
        "{unguard}; UPDATE events SET payload = replace(payload, 'line 1', 'line X') WHERE id = 3;"
    ))
    .unwrap();
    let report = store.verify_chain().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken_event, Some(3));
    assert_eq!(report.checked, 2);
    assert_eq!(report.head_id, Some(4));
    assert!(report.problem.unwrap().contains("event 3"));
}

async fn export_writes_one_json_object_per_event(db: &TestDb) {
    let (store, _) = store_with_task(db).await;
    let jsonl = String::from_utf8(store.export_jsonl().await.unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["kind"], "task_created");
    assert_eq!(lines[0]["hash"].as_str().unwrap().len(), 64);
}

#[test]
fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = Store::open(&file.join("data"), Durability::Normal).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("cannot be used"), "{message}");
    assert!(message.contains("--data-dir"), "{message}");
}

fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

async fn agent_briefs_usage_and_the_overview_round_trip(db: &TestDb) {
    use pushpals_core::{AgentWork, Usage};
    let (store, first) = store_with_task(db).await;
    let second = task_id(2);
    let brief = AgentWork {
        prompt: "add a test".into(),
        scope: vec!["src/".into()],
        depends_on: vec![first.clone()],
        ..AgentWork::default()
    };
    let (id, work) = (second.clone(), brief.clone());
    let task = store
        .write(move |tx| {
            tx.insert_task(
                TaskRow {
                    id: &id,
                    repo: "app",
                    title: "Test it",
                    command: None,
                    agent: Some(&work),
                    sandbox: serde_json::Value::Null,
                },
                Actor::User("a".into()),
            )
        })
        .await
        .unwrap();
    assert_eq!(task.agent.as_ref(), Some(&brief));
    assert_eq!(task.seq, 2);
    let call = Usage {
        model_calls: 1,
        input_tokens: 100,
        output_tokens: 20,
        cost_micros: 140,
    };
    let id = second.clone();
    store
        .write(move |tx| {
            tx.add_usage(&id, call)?;
            tx.add_usage(&id, call)?;
            tx.append(NewEvent::for_task(
                &id,
                Actor::Orchestrator,
                EventKind::ToolCall,
                json!({ "tool": "read_file" }),
            ))?;
            tx.append(NewEvent::for_task(
                &id,
                Actor::Orchestrator,
                EventKind::CheckResult,
                json!({ "check": "test", "passed": false }),
            ))?;
            tx.append(NewEvent::for_task(
                &id,
                Actor::Orchestrator,
                EventKind::CheckResult,
                json!({ "check": "test", "passed": true }),
            ))
        })
        .await
        .unwrap();
    let task = store.task(&second).await.unwrap();
    assert_eq!(task.usage.model_calls, 2);
    assert_eq!(task.usage.tokens(), 240);
    assert_eq!(task.usage.cost_micros, 280);

    let overview = store
        .task_overview(&["tool_call", "check_result"], "check_result", 6)
        .await
        .unwrap();
    assert_eq!(overview.len(), 2);
    assert!(overview[0].last_step.is_none() && overview[0].checks.is_empty());
    assert_eq!(overview[1].last_step.as_ref().unwrap().kind, "check_result");
    assert_eq!(overview[1].checks.len(), 2);
    assert_eq!(
        overview[1].checks[0].payload["passed"], true,
        "newest first"
    );

    let missing = task_id(9);
    let error = store
        .write(move |tx| tx.add_usage(&missing, call))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::TaskNotFound(_)), "{error}");
}

async fn pairing_codes_work_once_and_only_before_they_expire(db: &TestDb) {
    let store = db.open(Durability::Normal);
    let results = store
        .write(|tx| {
            tx.insert_pairing_code("fresh", "read", 100)?;
            tx.insert_pairing_code("stale", "read", 100)?;
            Ok((
                tx.redeem_pairing_code("fresh", 50)?,
                tx.redeem_pairing_code("fresh", 51)?,
                tx.redeem_pairing_code("stale", 100)?,
                tx.redeem_pairing_code("unknown", 1)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(results, (Some("read".to_owned()), None, None, None));
    let id = store
        .write(|tx| tx.insert_token("device:x", "hash-x", "read"))
        .await
        .unwrap();
    assert!(store.token("hash-x").await.unwrap().is_some());
    let revoked = store
        .write(move |tx| Ok((tx.revoke_token(id)?, tx.revoke_token(id)?)))
        .await
        .unwrap();
    assert_eq!(revoked, (true, false));
    assert!(store.token("hash-x").await.unwrap().is_none());
    let listed = store.token_list().await.unwrap();
    assert!(listed[0].revoked_at.is_some());
}

#[tokio::test]
async fn a_database_of_an_older_schema_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What the first release wrote: its migrations only, and a task.
        let mut conn = rusqlite::Connection::open(dir.path().join("pushpals.db")).unwrap();
        pushpals_store::schema::migrations_through(2)
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO tasks (id, seq, title, command, state, branch, created_at, updated_at) \
             VALUES ('old-1', 1, 'Old task', 'true', 'committed', 'pushpals/old-1', 't', 't')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    let task = store.task(&TaskId::parse("old-1").unwrap()).await.unwrap();
    assert_eq!(task.title, "Old task");
    assert_eq!(task.state, TaskState::Committed);
    assert!(task.agent.is_none());
    assert_eq!(task.usage.model_calls, 0);
    assert!(store.verify_chain().await.unwrap().ok);
    let version: i64 = rusqlite_connection(&dir.path().join("pushpals.db"))
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version as usize, pushpals_store::schema::SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushpals.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99; CREATE TABLE future (x INTEGER);")
        .unwrap();
    let error = Store::open(dir.path(), Durability::Normal).unwrap_err();
    assert!(
        matches!(error, StoreError::TooNew { found: 99, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade pushpals"));
    let version: i64 = rusqlite_connection(&path)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

fn page(task: &TaskId, before: Option<i64>) -> pushpals_store::EventsBefore {
    pushpals_store::EventsBefore {
        before,
        task_id: Some(task.clone()),
        kind: None,
        limit: 10,
    }
}

async fn a_timeline_reads_from_its_end_and_pages_backwards(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let other = task_id(2);
    let (task, other_task) = (id.clone(), other.clone());
    store
        .write(move |tx| {
            tx.insert_task(
                TaskRow {
                    id: &other_task,
                    repo: "app",
                    title: "Another",
                    command: Some("true"),
                    agent: None,
                    sandbox: serde_json::Value::Null,
                },
                Actor::User("admin".into()),
            )?;
            for n in 0..25 {
                tx.append(NewEvent::for_task(
                    &task,
                    Actor::Orchestrator,
                    EventKind::Output,
                    json!({ "n": n }),
                ))?;
                tx.append(NewEvent::for_task(
                    &other_task,
                    Actor::Orchestrator,
                    EventKind::Output,
                    json!({ "n": 100 + n }),
                ))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // The end: the last ten, oldest first, none of the other task's.
    let last = store.events_before(page(&id, None)).await.unwrap();
    let numbers: Vec<_> = last
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (15..25).collect::<Vec<_>>());
    // The page before it, then the rest down to task_created.
    let earlier = store
        .events_before(page(&id, Some(last[0].id)))
        .await
        .unwrap();
    let numbers: Vec<_> = earlier
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (5..15).collect::<Vec<_>>());
    let first = store
        .events_before(page(&id, Some(earlier[0].id)))
        .await
        .unwrap();
    assert_eq!(first.len(), 6);
    assert_eq!(first[0].kind.as_str(), "task_created");
    assert!(
        store
            .events_before(page(&id, Some(first[0].id)))
            .await
            .unwrap()
            .is_empty()
    );
    // The whole log by kind: both tasks' output, newest first in pages.
    let outputs = store
        .events_before(pushpals_store::EventsBefore {
            before: None,
            task_id: None,
            kind: Some("output".into()),
            limit: 3,
        })
        .await
        .unwrap();
    let numbers: Vec<_> = outputs
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [123, 24, 124]);
    let kinds = store.event_kinds().await.unwrap();
    assert_eq!(kinds, ["output", "task_created"]);
}

async fn a_devices_chat_is_its_own_kept_in_order_and_bounded(db: &TestDb) {
    use pushpals_store::chat::{KEPT_PER_DEVICE, Speaker};
    let store = db.open(Durability::Normal);
    store
        .write(|tx| {
            tx.record_chat(
                "phone",
                &[
                    (Speaker::Person, "status"),
                    (Speaker::PushPals, "#1 is running"),
                ],
            )?;
            tx.record_chat("laptop", &[(Speaker::Person, "cancel 1")])
        })
        .await
        .unwrap();
    let phone = store.chat_history("phone", 10).await.unwrap();
    let said: Vec<_> = phone
        .iter()
        .map(|l| (l.who.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(said, [("me", "status"), ("them", "#1 is running")]);
    assert_eq!(store.chat_history("laptop", 10).await.unwrap().len(), 1);
    assert!(store.chat_history("tablet", 10).await.unwrap().is_empty());
    // Beyond the bound the oldest go; the newest stay, in order.
    let many = usize::try_from(KEPT_PER_DEVICE).unwrap() + 20;
    store
        .write(move |tx| {
            for n in 0..many {
                tx.record_chat("phone", &[(Speaker::Person, &format!("line {n}"))])?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let kept = store.chat_history("phone", 10_000).await.unwrap();
    assert_eq!(kept.len(), usize::try_from(KEPT_PER_DEVICE).unwrap());
    assert_eq!(kept.last().unwrap().text, format!("line {}", many - 1));
    assert_eq!(
        kept[0].text,
        format!("line {}", many - usize::try_from(KEPT_PER_DEVICE).unwrap())
    );
    assert_eq!(store.chat_history("laptop", 10).await.unwrap().len(), 1);
    // A revoked device's chat goes with it; another device's stays.
    store
        .write(|tx| {
            let phone = tx.insert_token("phone", "hash-1", "read")?;
            tx.insert_token("laptop", "hash-2", "read")?;
            tx.revoke_token(phone)
        })
        .await
        .unwrap();
    assert!(store.chat_history("phone", 10).await.unwrap().is_empty());
    assert_eq!(store.chat_history("laptop", 10).await.unwrap().len(), 1);
}

async fn a_taken_id_is_a_duplicate_by_its_code_and_nothing_is_written(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let again = id.clone();
    let clash = store
        .write(move |tx| {
            tx.append(NewEvent::for_task(
                &again,
                Actor::Orchestrator,
                EventKind::Output,
                json!({ "text": "before the clash" }),
            ))?;
            tx.insert_task(
                TaskRow {
                    id: &again,
                    repo: "app",
                    title: "Same id",
                    command: Some("true"),
                    agent: None,
                    sandbox: serde_json::Value::Null,
                },
                Actor::User("admin".into()),
            )
        })
        .await;
    assert!(matches!(clash, Err(StoreError::Duplicate(_))), "{clash:?}");
    // The whole write was undone: no event of it, the first task intact.
    let events = store
        .events(EventQuery {
            task_id: Some(id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(store.task(&id).await.unwrap().title, "Rename foo");
    assert!(store.verify_chain().await.unwrap().ok);
}

/// Writes that fail among many at once (inside one group commit) take
/// back only their own rows and events; the others commit, in one chain.
async fn failing_writes_in_a_batch_undo_only_themselves(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    let mut handles = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    tx.append(NewEvent::for_task(
                        &id,
                        Actor::Orchestrator,
                        EventKind::Output,
                        json!({ "n": n }),
                    ))?;
                    if n % 3 == 0 {
                        // A write that changes its mind after appending.
                        return Err(StoreError::Corrupt {
                            table: "test",
                            detail: format!("write {n} gives up"),
                        });
                    }
                    Ok(n)
                })
                .await
        }));
    }
    let mut kept = Vec::new();
    for handle in handles {
        match handle.await.unwrap() {
            Ok(n) => kept.push(n),
            Err(StoreError::Corrupt { detail, .. }) => assert!(detail.contains("gives up")),
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(kept.len(), 40);
    let events = store.task_events(&id).await.unwrap();
    let mut seen: Vec<i64> = events
        .iter()
        .filter_map(|e| e.payload["n"].as_i64())
        .collect();
    seen.sort_unstable();
    kept.sort_unstable();
    assert_eq!(seen, kept);
    for pair in events.windows(2) {
        assert_eq!(pair[1].id, pair[0].id + 1, "ids stay contiguous");
    }
    let report = store.verify_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 41);
}

/// A long log is verified in stretches side by side: a change or a missing
/// event anywhere, at a stretch's edge too, is named as in one pass.
async fn a_long_log_verified_in_stretches_names_the_first_break(db: &TestDb) {
    let (store, id) = store_with_task(db).await;
    for batch in 0..30 {
        let id = id.clone();
        store
            .write(move |tx| {
                for n in 0..1000 {
                    tx.append(NewEvent::for_task(
                        &id,
                        Actor::Orchestrator,
                        EventKind::Output,
                        json!({ "n": batch * 1000 + n }),
                    ))?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let whole = store.verify_chain().await.unwrap();
    assert!(whole.ok, "{whole:?}");
    assert_eq!(whole.checked, 30_001);
    assert_eq!(whole.head_id, Some(30_001));
    let unguard = if db.pg.is_some() {
        "ALTER TABLE events DISABLE TRIGGER events_no_change;"
    } else {
        "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;"
    };
    db.exec(&format!(
        "{unguard} UPDATE events SET payload = replace(payload, '19998', '99999') WHERE id = 20000;"
    ))
    .unwrap();
    let changed = store.verify_chain().await.unwrap();
    assert_eq!(changed.first_broken_event, Some(20_000), "{changed:?}");
    assert_eq!(changed.checked, 19_999);
    assert_eq!(changed.head_id, Some(30_001));
    // Every place a stretch may start (2, 3 or 4 of them): the event there
    // goes missing, and the one after it is named.
    for gone in [7_501, 10_001, 15_001] {
        db.exec(&format!("DELETE FROM events WHERE id = {gone};"))
            .unwrap();
    }
    let missing = store.verify_chain().await.unwrap();
    assert_eq!(missing.first_broken_event, Some(7_502), "{missing:?}");
    assert_eq!(missing.checked, 7_500);
    assert!(
        missing.problem.unwrap().contains("7501 is missing"),
        "names the missing event"
    );
}

on_both_backends!(
    a_long_log_verified_in_stretches_names_the_first_break,
    failing_writes_in_a_batch_undo_only_themselves,
    transitions_are_persisted_and_evented,
    an_invalid_transition_changes_nothing_and_appends_nothing,
    deciding_twice_is_refused,
    concurrent_writers_share_commits_and_keep_one_chain,
    reopening_continues_the_chain,
    blobs_are_content_addressed,
    tampering_is_named_by_verify_and_plain_updates_are_refused,
    export_writes_one_json_object_per_event,
    agent_briefs_usage_and_the_overview_round_trip,
    pairing_codes_work_once_and_only_before_they_expire,
    a_timeline_reads_from_its_end_and_pages_backwards,
    a_devices_chat_is_its_own_kept_in_order_and_bounded,
    a_taken_id_is_a_duplicate_by_its_code_and_nothing_is_written,
);
