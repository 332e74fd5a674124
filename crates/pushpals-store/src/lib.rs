//! Persistence for Push Pals.
//!
//! Owns the database: SQLite in the data directory by default (embedded,
//! WAL), or PostgreSQL at a URL; migrations run at every open, each backend
//! with its own. It keeps the append-only, hash-chained event log (the same
//! canonical bytes on both, so `audit verify` gives the same head),
//! content-addressed blobs, and the one-server-per-data-directory lock (on
//! PostgreSQL also a lock in the database, so two servers never write one).
//! It knows nothing about HTTP, git or agents. Every query is written once
//! (`sql`), on a connection of either backend.
//!
//! Writes go through [`Store::write`]: a single writer thread commits
//! whatever requests arrived together in one transaction (group commit), and
//! a caller's future resolves only after its transaction committed. Committed
//! events are published to [`Store::subscribe`]rs in id order.
//!
//! Over 400 lines: the store's handle and every read query beside it; opening it is in
//! `database`, writes are in `write_tx`.

#![forbid(unsafe_code)]

mod access;
mod audit;
pub mod backup;
pub mod chat;
mod database;
mod error;
pub mod findings;
mod lock;
pub mod migrate;
mod repositories;
mod rows;
pub mod schema;
mod sql;
mod workers;
mod write_tx;
mod writer;

pub use access::{GrantRecord, PushSubscription, TokenInfo, TokenRecord};
pub use audit::AuditReport;
pub use database::{DATABASE_FILE, Database};
use database::{open_backend, open_reader};
pub use error::{StoreError, StoreResult};
pub use lock::DataDirLock;
pub use repositories::{NewRepository, RepositoryRecord};
pub use sql::Backend;
pub use sql::postgres::redacted_url;
pub use workers::{NewWorker, WorkerRecord, WorkerReport};
pub use write_tx::{ChainHead, TaskRow, TaskUpdate, WriteTx, push_service};
pub use writer::WriteObserver;

use pushpals_core::{Approval, ApprovalId, Event, Task, TaskId, TaskState};
use rows::{
    APPROVAL_COLUMNS, EVENT_COLUMNS, TASK_COLUMNS, approval_from_row, event_from_row, task_from_row,
};
use sql::{Db, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use writer::WriterHandle;

/// How many committed events the live broadcast keeps for subscribers that
/// fall behind (they catch up from the database past that). It bounds the
/// memory the broadcast holds: up to this many events, output chunks of up
/// to 16 KiB among them.
const PUBLISHED_EVENTS: usize = 1024;

/// How hard each commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: survives a killed process, may lose
    /// the last commits on a power cut.
    #[default]
    Normal,
    /// `synchronous=FULL`: survives a power cut, about ten times slower.
    Full,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events with a greater id.
    pub after: i64,
    /// Only the events of this task.
    pub task_id: Option<TaskId>,
    /// At most this many (default 1,000).
    pub limit: Option<u32>,
}

/// Which events to read from the end of the log (see
/// [`Store::events_before`]).
#[derive(Debug, Clone)]
pub struct EventsBefore {
    /// Only events with a smaller id (`None`: from the newest).
    pub before: Option<i64>,
    /// Only the events of this task.
    pub task_id: Option<TaskId>,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// A task with its latest step and check results (see
/// [`Store::task_overview`]).
#[derive(Debug, Clone)]
pub struct TaskOverview {
    /// The task.
    pub task: Task,
    /// Its latest step event.
    pub last_step: Option<Event>,
    /// Its latest check results, newest first.
    pub checks: Vec<Event>,
}

struct Inner {
    writer: WriterHandle,
    reader: Mutex<Box<dyn Db + Send>>,
    published: broadcast::Sender<Event>,
    database: Database,
    database_path: Option<PathBuf>,
}

/// The store: cheap to clone, shared by every part of the orchestrator.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.inner.database.to_string())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store in `data_dir` and runs
    /// pending migrations.
    pub fn open(data_dir: &Path, durability: Durability) -> StoreResult<Self> {
        Self::open_database(&Database::Sqlite(data_dir.to_path_buf()), durability)
    }

    /// Opens the store in `database` (creating its tables if needed) and
    /// runs pending migrations. A PostgreSQL database another server writes
    /// to is refused ([`StoreError::DatabaseInUse`]).
    pub fn open_database(database: &Database, durability: Durability) -> StoreResult<Self> {
        // PostgreSQL's client blocks on a runtime of its own, which it may
        // not do on a thread that drives async tasks (the caller's may): the
        // database is opened on a thread of its own.
        let (writer, reader, database_path, head) = std::thread::scope(|scope| {
            scope
                .spawn(|| open_backend(database, durability))
                .join()
                .map_err(|_| StoreError::Writer("opening the database panicked".into()))?
        })?;
        let (published, _) = broadcast::channel(PUBLISHED_EVENTS);
        let writer = WriterHandle::spawn(writer, head, published.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                reader: Mutex::new(reader),
                published,
                database: database.clone(),
                database_path,
            }),
        })
    }

    /// Where the store keeps its state.
    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// The SQLite database file (`None` on PostgreSQL).
    pub fn database_path(&self) -> Option<&Path> {
        self.inner.database_path.as_deref()
    }

    /// The bytes the database takes: SQLite's file with its WAL, or
    /// PostgreSQL's database as the server counts it.
    pub async fn database_bytes(&self) -> StoreResult<u64> {
        if let Some(path) = self.database_path() {
            let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            return Ok(size(path.to_path_buf())
                + size(path.with_extension("db-wal"))
                + size(path.with_extension("db-shm")));
        }
        self.read(|conn| {
            let bytes: i64 = conn
                .query_one("SELECT pg_database_size(current_database())", &params![])?
                .get(0)?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
        .await
    }

    /// Runs `op` in the next group commit; resolves once it is committed.
    /// If `op` fails, its changes (and events) are rolled back alone.
    pub async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.inner.writer.submit(op).await
    }

    /// Reports each group commit and each write's latency to `observer`
    /// (metrics). Only the first observer set is kept.
    pub fn observe_writes(&self, observer: Arc<dyn WriteObserver>) {
        self.inner.writer.observe(observer);
    }

    /// How many tasks are in each state (states without tasks are left out).
    pub async fn task_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        self.read(|conn| {
            let rows = conn.query(
                "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state",
                &params![],
            )?;
            let mut counts = Vec::new();
            for row in rows {
                let (state, count): (String, i64) = (row.get(0)?, row.get(1)?);
                counts.push((state, u64::try_from(count).unwrap_or(0)));
            }
            Ok(counts)
        })
        .await
    }

    /// How many approvals wait for a decision.
    pub async fn pending_approval_count(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let count: i64 = conn
                .query_one(
                    "SELECT COUNT(*) FROM approvals WHERE state = 'pending'",
                    &params![],
                )?
                .get(0)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }

    /// Committed events from now on, in id order.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.published.subscribe()
    }

    /// How many live subscribers there are.
    pub fn subscriber_count(&self) -> usize {
        self.inner.published.receiver_count()
    }

    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .reader
                .lock()
                .map_err(|_| StoreError::Writer("the reader connection is poisoned".into()))?;
            op(conn.as_ref())
        })
        .await
        .map_err(|e| StoreError::Writer(format!("read task failed: {e}")))?
    }

    /// Runs `op` on a connection of its own (long reads: verify, export).
    async fn read_alone<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<T> + Send + 'static,
    {
        let database = self.inner.database.clone();
        tokio::task::spawn_blocking(move || op(open_reader(&database)?.as_ref()))
            .await
            .map_err(|e| StoreError::Writer(format!("read task failed: {e}")))?
    }

    /// One task.
    pub async fn task(&self, id: &TaskId) -> StoreResult<Task> {
        let id = id.clone();
        self.read(move |conn| {
            let row = conn
                .query_opt(
                    &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
                    &params![id.as_str()],
                )?
                .ok_or(StoreError::TaskNotFound(id))?;
            task_from_row(&row)
        })
        .await
    }

    /// The task's latest event of `kind`, if any.
    pub async fn last_task_event(
        &self,
        task_id: &TaskId,
        kind: &'static str,
    ) -> StoreResult<Option<Event>> {
        let id = task_id.as_str().to_owned();
        self.read(move |conn| {
            conn.query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ?1 AND kind = ?2 \
                     ORDER BY id DESC LIMIT 1"
                ),
                &params![id, kind],
            )?
            .as_ref()
            .map(event_from_row)
            .transpose()
        })
        .await
    }

    /// The id of the task numbered `seq` (the `#` number lists show).
    pub async fn task_id_by_seq(&self, seq: i64) -> StoreResult<Option<TaskId>> {
        self.read(move |conn| {
            let id: Option<String> = conn
                .query_opt("SELECT id FROM tasks WHERE seq = ?1", &params![seq])?
                .map(|row| row.get(0))
                .transpose()?;
            Ok(id.and_then(|id| TaskId::parse(&id).ok()))
        })
        .await
    }

    /// All tasks, oldest first; only those in `states` when given.
    pub async fn tasks(&self, states: Option<Vec<TaskState>>) -> StoreResult<Vec<Task>> {
        self.read(move |conn| {
            let rows = conn.query(
                &format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY seq"),
                &params![],
            )?;
            let mut tasks = Vec::new();
            for row in rows {
                let task = task_from_row(&row)?;
                if states.as_ref().is_none_or(|s| s.contains(&task.state)) {
                    tasks.push(task);
                }
            }
            Ok(tasks)
        })
        .await
    }

    /// All of one task's events, oldest first.
    pub async fn task_events(&self, task_id: &TaskId) -> StoreResult<Vec<Event>> {
        self.events(EventQuery {
            task_id: Some(task_id.clone()),
            limit: Some(u32::MAX),
            ..EventQuery::default()
        })
        .await
    }

    /// Events in id order.
    pub async fn events(&self, query: EventQuery) -> StoreResult<Vec<Event>> {
        self.read(move |conn| {
            let limit = i64::from(query.limit.unwrap_or(1000));
            // Two statements, so that each uses its index.
            let rows = match query.task_id {
                Some(task_id) => conn.query(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events \
                         WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                    ),
                    &params![task_id.as_str(), query.after, limit],
                )?,
                None => conn.query(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
                    ),
                    &params![query.after, limit],
                )?,
            };
            rows.iter().map(event_from_row).collect()
        })
        .await
    }

    /// The last `limit` events before the event `before` (the newest when
    /// `None`), of one task and one kind when given, oldest first: a log
    /// read from its end and paged backwards.
    pub async fn events_before(&self, query: EventsBefore) -> StoreResult<Vec<Event>> {
        self.read(move |conn| {
            // Each condition given adds its parameter, numbered in order.
            let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id < ?1");
            let mut bound = vec![sql::Value::from(query.before.unwrap_or(i64::MAX))];
            if let Some(task_id) = &query.task_id {
                bound.push(task_id.as_str().into());
                sql.push_str(&format!(" AND task_id = ?{}", bound.len()));
            }
            if let Some(kind) = query.kind {
                bound.push(kind.into());
                sql.push_str(&format!(" AND kind = ?{}", bound.len()));
            }
            bound.push(query.limit.into());
            sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", bound.len()));
            let mut events = conn
                .query(&sql, &bound)?
                .iter()
                .map(event_from_row)
                .collect::<StoreResult<Vec<_>>>()?;
            events.reverse();
            Ok(events)
        })
        .await
    }

    /// Every event kind the log holds, sorted.
    pub async fn event_kinds(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            conn.query("SELECT DISTINCT kind FROM events ORDER BY kind", &params![])?
                .iter()
                .map(|row| row.get(0))
                .collect()
        })
        .await
    }

    /// Every task (oldest first) with its latest event of `step_kinds` and
    /// its latest `check_kind` events (newest first, at most `checks`), in
    /// one read: what a status overview needs.
    pub async fn task_overview(
        &self,
        step_kinds: &'static [&'static str],
        check_kind: &'static str,
        checks: u32,
    ) -> StoreResult<Vec<TaskOverview>> {
        self.read(move |conn| {
            let marks: Vec<String> = (2..step_kinds.len() + 2).map(|n| format!("?{n}")).collect();
            let last = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ?1 AND kind IN ({}) \
                 ORDER BY id DESC LIMIT 1",
                marks.join(", ")
            );
            let recent_checks = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ?1 AND kind = ?2 \
                 ORDER BY id DESC LIMIT ?3"
            );
            let all = conn
                .query(
                    &format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY seq"),
                    &params![],
                )?
                .iter()
                .map(task_from_row)
                .collect::<StoreResult<Vec<Task>>>()?;
            let mut out = Vec::with_capacity(all.len());
            for task in all {
                let id = task.id.as_str().to_owned();
                let mut values = vec![sql::Value::from(id.as_str())];
                values.extend(step_kinds.iter().map(sql::Value::from));
                let last_step = conn
                    .query_opt(&last, &values)?
                    .as_ref()
                    .map(event_from_row)
                    .transpose()?;
                let checks = conn
                    .query(&recent_checks, &params![id.as_str(), check_kind, checks])?
                    .iter()
                    .map(event_from_row)
                    .collect::<StoreResult<Vec<Event>>>()?;
                out.push(TaskOverview {
                    task,
                    last_step,
                    checks,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The id of the last event, 0 when the log is empty.
    pub async fn last_event_id(&self) -> StoreResult<i64> {
        self.read(|conn| {
            conn.query_one("SELECT COALESCE(MAX(id), 0) FROM events", &params![])?
                .get(0)
        })
        .await
    }

    /// Approvals, oldest first: of one task when given, only pending ones
    /// when asked.
    pub async fn approvals(
        &self,
        task_id: Option<TaskId>,
        pending_only: bool,
    ) -> StoreResult<Vec<Approval>> {
        self.read(move |conn| {
            let task_id = task_id.map(String::from);
            conn.query(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals \
                     WHERE (CAST(?1 AS TEXT) IS NULL OR task_id = ?1) AND (?2 = 0 OR state = 'pending') \
                     ORDER BY id"
                ),
                &params![task_id, pending_only],
            )?
            .iter()
            .map(approval_from_row)
            .collect()
        })
        .await
    }

    /// One approval.
    pub async fn approval(&self, id: ApprovalId) -> StoreResult<Approval> {
        self.read(move |conn| {
            let row = conn
                .query_opt(
                    &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                    &params![id],
                )?
                .ok_or(StoreError::ApprovalNotFound(id))?;
            approval_from_row(&row)
        })
        .await
    }

    /// A blob's content by its hash.
    pub async fn blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            conn.query_opt("SELECT content FROM blobs WHERE hash = ?1", &params![hash])?
                .map(|row| row.get(0))
                .transpose()
        })
        .await
    }

    /// The newest event of a kind, if any.
    pub async fn last_event_of_kind(&self, kind: &'static str) -> StoreResult<Option<Event>> {
        self.read(move |conn| {
            conn.query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE kind = ?1 ORDER BY id DESC LIMIT 1"
                ),
                &params![kind],
            )?
            .as_ref()
            .map(event_from_row)
            .transpose()
        })
        .await
    }

    /// The latest event of `kind` whose payload names repository `repo`
    /// (its `repo` field).
    pub async fn last_repo_event_of_kind(
        &self,
        kind: &'static str,
        repo: &str,
    ) -> StoreResult<Option<Event>> {
        let repo = repo.to_owned();
        self.read(move |conn| {
            // Reading a JSON field is the one thing the two say differently.
            let field = match conn.backend() {
                Backend::Sqlite => "json_extract(payload, '$.repo')",
                Backend::Postgres => "(payload::json ->> 'repo')",
            };
            conn.query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events \
                     WHERE kind = ?1 AND {field} = ?2 ORDER BY id DESC LIMIT 1"
                ),
                &params![kind, repo],
            )?
            .as_ref()
            .map(event_from_row)
            .transpose()
        })
        .await
    }

    /// The bytes of every stored blob together.
    pub async fn blob_bytes(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let total: i64 = conn
                .query_one(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs",
                    &params![],
                )?
                .get(0)?;
            Ok(u64::try_from(total).unwrap_or(0))
        })
        .await
    }

    /// The scanner's findings, filtered.
    pub async fn findings(
        &self,
        filter: findings::FindingFilter,
    ) -> StoreResult<Vec<findings::Finding>> {
        self.read(move |conn| findings::list(conn, &filter)).await
    }

    /// `device`'s last `limit` chat lines, oldest first.
    pub async fn chat_history(&self, device: &str, limit: u32) -> StoreResult<Vec<chat::ChatLine>> {
        let device = device.to_owned();
        self.read(move |conn| chat::history(conn, &device, limit))
            .await
    }

    /// Recomputes the hash chain over the whole log (a long one in
    /// stretches side by side, each on its own connection).
    pub async fn verify_chain(&self) -> StoreResult<AuditReport> {
        let database = self.inner.database.clone();
        tokio::task::spawn_blocking(move || audit::verify_log(&|| open_reader(&database)))
            .await
            .map_err(|e| StoreError::Writer(format!("read task failed: {e}")))?
    }

    /// Writes the whole log as JSON lines; returns how many events.
    pub async fn export_jsonl(&self) -> StoreResult<Vec<u8>> {
        self.read_alone(|conn| {
            let mut out = Vec::new();
            audit::export_jsonl(conn, &mut out)?;
            Ok(out)
        })
        .await
    }
}
