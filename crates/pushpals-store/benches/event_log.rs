//! Event-log throughput against raw SQLite and raw PostgreSQL, measured
//! side by side.
//!
//! Prints, for each operation and backend, our figure, the floor under it
//! measured in the same run (the same rows written with the database's own
//! client, or read and hashed), and the ratio. PostgreSQL is a throwaway
//! cluster from Debian's packages on a Unix socket. Run with
//! `cargo bench -p pushpals-store --bench event_log`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_core::chain::{GENESIS_HASH, HashedFields, event_hash};
use pushpals_core::{Actor, EventKind, NewEvent, TaskId};
use pushpals_store::{Database, Durability, Store};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Instant;

const EVENTS: i64 = 5_000;
/// The log verified: big enough that opening a connection does not count.
const VERIFY_EVENTS: i64 = 200_000;

fn payload(n: i64) -> serde_json::Value {
    json!({ "step": "worker", "stream": "stdout", "text": format!("line {n} of some command output that is typical in length\n") })
}

/// Raw rusqlite: the same table shape, hash-chained rows, `per_tx` rows per
/// transaction.
fn floor_insert(per_tx: i64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE events (id INTEGER PRIMARY KEY, task_id TEXT, time TEXT NOT NULL,
           actor TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
           prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    )
    .unwrap();
    let started = Instant::now();
    let mut prev = GENESIS_HASH.to_owned();
    let mut id = 1;
    while id <= EVENTS {
        let tx = conn.transaction().unwrap();
        for _ in 0..per_tx {
            let value = payload(id);
            let time = pushpals_core::timestamp::now();
            let hash = event_hash(
                &prev,
                HashedFields {
                    id,
                    task_id: Some("bench"),
                    time: &time,
                    actor: "worker:bench",
                    kind: "output",
                    payload: &value,
                },
            );
            tx.execute(
                "INSERT INTO events VALUES (?1, 'bench', ?2, 'worker:bench', 'output', ?3, ?4, ?5)",
                rusqlite::params![id, time, value.to_string(), prev, hash],
            )
            .unwrap();
            prev = hash;
            id += 1;
        }
        tx.commit().unwrap();
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

/// A new store: SQLite in a new directory, or a new PostgreSQL database.
fn open_store(postgres: bool) -> (tempfile::TempDir, Store, TaskId) {
    let dir = tempfile::tempdir().unwrap();
    let database = if postgres {
        Database::Postgres(pushpals_test_support::postgres_database().url)
    } else {
        Database::Sqlite(dir.path().to_path_buf())
    };
    let store = Store::open_database(&database, Durability::Normal).unwrap();
    (dir, store, TaskId::parse("bench").unwrap())
}

fn event(task: &TaskId, n: i64) -> NewEvent {
    NewEvent::for_task(
        task,
        Actor::Worker(task.clone()),
        EventKind::Output,
        payload(n),
    )
}

/// One writer awaiting each append before the next: one commit per event.
async fn ours_sequential(postgres: bool) -> f64 {
    let (_dir, store, task) = open_store(postgres);
    let started = Instant::now();
    for n in 0..EVENTS {
        let new_event = event(&task, n);
        store.write(move |tx| tx.append(new_event)).await.unwrap();
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

/// Many writers at once: the group commit batches them.
async fn ours_concurrent(postgres: bool, writers: i64) -> f64 {
    let (_dir, store, task) = open_store(postgres);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let task = task.clone();
        handles.push(tokio::spawn(async move {
            for n in 0..EVENTS / writers {
                let new_event = event(&task, w * 1_000_000 + n);
                store.write(move |tx| tx.append(new_event)).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

/// The floor of verification: read every row and SHA-256 it, no JSON work.
fn floor_verify(path: &std::path::Path) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let started = Instant::now();
    let mut statement = conn
        .prepare("SELECT id, task_id, time, actor, kind, payload, prev_hash, hash FROM events ORDER BY id")
        .unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut count = 0u64;
    let mut last = [0u8; 32];
    while let Some(row) = rows.next().unwrap() {
        let mut hasher = Sha256::new();
        for column in 1..8 {
            let text: Option<String> = row.get(column).unwrap();
            hasher.update(text.unwrap_or_default().as_bytes());
        }
        last = hasher.finalize().into();
        count += 1;
    }
    std::hint::black_box(last);
    count as f64 / started.elapsed().as_secs_f64()
}

fn report(name: &str, ours: f64, floor: f64, floor_name: &str) {
    println!(
        "{name:<44} ours {ours:>10.0}/s   floor {floor:>10.0}/s ({floor_name})   ratio {:.2}",
        ours / floor
    );
}

/// A store holding `VERIFY_EVENTS` events, written in big batches.
async fn a_long_log(postgres: bool) -> (tempfile::TempDir, Store) {
    let (dir, store, task) = open_store(postgres);
    for batch in 0..VERIFY_EVENTS / 1000 {
        let task = task.clone();
        store
            .write(move |tx| {
                for n in 0..1000 {
                    tx.append(event(&task, batch * 1000 + n))?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    (dir, store)
}

/// Raw PostgreSQL: the same table shape, hash-chained rows, `per_tx` rows
/// per transaction through one prepared INSERT, commits not waiting for the
/// flush (as the store's `normal` durability).
fn floor_pg_insert(url: &str, per_tx: i64) -> f64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "SET synchronous_commit = off; DROP TABLE IF EXISTS raw_events;
             CREATE TABLE raw_events (id BIGINT PRIMARY KEY, task_id TEXT, time TEXT NOT NULL,
               actor TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
               prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
        )
        .unwrap();
    let insert = client
        .prepare(
            "INSERT INTO raw_events VALUES ($1, 'bench', $2, 'worker:bench', 'output', $3, $4, $5)",
        )
        .unwrap();
    let started = Instant::now();
    let mut prev = GENESIS_HASH.to_owned();
    let mut id = 1i64;
    while id <= EVENTS {
        let mut tx = client.transaction().unwrap();
        for _ in 0..per_tx {
            let value = payload(id);
            let time = pushpals_core::timestamp::now();
            let hash = event_hash(
                &prev,
                HashedFields {
                    id,
                    task_id: Some("bench"),
                    time: &time,
                    actor: "worker:bench",
                    kind: "output",
                    payload: &value,
                },
            );
            tx.execute(&insert, &[&id, &time, &value.to_string(), &prev, &hash])
                .unwrap();
            prev = hash;
            id += 1;
        }
        tx.commit().unwrap();
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

/// The floor of verification on PostgreSQL: read every row and SHA-256
/// it, the fastest way PostgreSQL hands rows out (one `COPY` stream, each
/// row a line of text), and the way the row-by-row query reads them.
fn floor_pg_verify(url: &str) -> (f64, f64) {
    use std::io::BufRead;
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let started = Instant::now();
    let reader = client
        .copy_out(
            "COPY (SELECT id, task_id, time, actor, kind, payload, prev_hash, hash FROM events \
             ORDER BY id) TO STDOUT",
        )
        .unwrap();
    let mut last = [0u8; 32];
    let mut rows = 0u64;
    for line in std::io::BufReader::with_capacity(256 * 1024, reader).split(b'\n') {
        let line = line.unwrap();
        last = Sha256::digest(&line).into();
        rows += 1;
    }
    std::hint::black_box(last);
    let copied = rows as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let rows = client
        .query("SELECT id, task_id, time, actor, kind, payload, prev_hash, hash FROM events ORDER BY id", &[])
        .unwrap();
    for row in &rows {
        let mut hasher = Sha256::new();
        for column in 1..8 {
            let text: Option<&str> = row.get(column);
            hasher.update(text.unwrap_or_default().as_bytes());
        }
        last = hasher.finalize().into();
    }
    std::hint::black_box(last);
    (copied, rows.len() as f64 / started.elapsed().as_secs_f64())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{EVENTS} hash-chained events per append run; {VERIFY_EVENTS} verified");
    println!("SQLite: WAL, synchronous=NORMAL");
    let floor_single = floor_insert(1);
    let floor_batched = floor_insert(100);
    let sequential = runtime.block_on(ours_sequential(false));
    report(
        "append, one writer, commit per event",
        sequential,
        floor_single,
        "raw SQLite, 1 event/tx",
    );
    let concurrent = runtime.block_on(ours_concurrent(false, 64));
    report(
        "append, 64 writers, group commit",
        concurrent,
        floor_batched,
        "raw SQLite, 100 events/tx",
    );
    let (_dir, store) = runtime.block_on(a_long_log(false));
    let started = Instant::now();
    let verified = runtime.block_on(store.verify_chain()).unwrap();
    assert!(verified.ok);
    let ours_verify = verified.checked as f64 / started.elapsed().as_secs_f64();
    let floor = floor_verify(store.database_path().expect("a SQLite store has a file"));
    report(
        "verify chain (read + SHA-256 of the stored bytes)",
        ours_verify,
        floor,
        "read + SHA-256",
    );
    drop(store);

    println!("PostgreSQL: a local cluster on a Unix socket, synchronous_commit=off");
    let raw = pushpals_test_support::postgres_database().url;
    let floor_single = floor_pg_insert(&raw, 1);
    let floor_batched = floor_pg_insert(&raw, 100);
    let sequential = runtime.block_on(ours_sequential(true));
    report(
        "append, one writer, commit per event",
        sequential,
        floor_single,
        "raw PostgreSQL, 1 event/tx",
    );
    let concurrent = runtime.block_on(ours_concurrent(true, 64));
    report(
        "append, 64 writers, group commit",
        concurrent,
        floor_batched,
        "raw PostgreSQL, 100 events/tx",
    );
    let (_dir, store) = runtime.block_on(a_long_log(true));
    let started = Instant::now();
    let verified = runtime.block_on(store.verify_chain()).unwrap();
    assert!(verified.ok);
    let ours_verify = verified.checked as f64 / started.elapsed().as_secs_f64();
    let Database::Postgres(url) = store.database().clone() else {
        unreachable!("a PostgreSQL store")
    };
    let (copied, queried) = floor_pg_verify(&url);
    report(
        "verify chain (read + SHA-256 of the stored bytes)",
        ours_verify,
        copied,
        "COPY out + SHA-256",
    );
    println!(
        "  (the same rows read by a row-by-row query and hashed: {queried:.0}/s, ratio {:.2})",
        ours_verify / queried
    );
}
