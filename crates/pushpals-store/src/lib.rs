//! Persistence for Push Pals.
//!
//! Owns the SQLite database (embedded, WAL, migrations at every open), the
//! append-only, hash-chained event log, content-addressed blobs, and the
//! one-server-per-data-directory lock. It knows nothing about HTTP, git or
//! agents.
//!
//! Writes go through [`Store::write`]: a single writer thread commits
//! whatever requests arrived together in one transaction (group commit), and
//! a caller's future resolves only after its transaction committed. Committed
//! events are published to [`Store::subscribe`]rs in id order.
//!
//! Over 400 lines: the store's handle and every read query beside it; writes are in `write_tx`.

#![forbid(unsafe_code)]

mod access;
mod audit;
pub mod backup;
pub mod chat;
mod error;
pub mod findings;
mod lock;
mod repositories;
mod rows;
pub mod schema;
mod write_tx;
mod writer;

pub use access::{GrantRecord, PushSubscription, TokenInfo, TokenRecord};
pub use audit::AuditReport;
pub use error::{StoreError, StoreResult};
pub use lock::DataDirLock;
pub use repositories::{NewRepository, RepositoryRecord};
pub use write_tx::{ChainHead, TaskRow, TaskUpdate, WriteTx, push_service};
pub use writer::WriteObserver;

use pushpals_core::chain::GENESIS_HASH;
use pushpals_core::{Approval, ApprovalId, Event, Task, TaskId, TaskState};
use rows::{
    APPROVAL_COLUMNS, EVENT_COLUMNS, TASK_COLUMNS, approval_from_row, event_from_row, task_from_row,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
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

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "pushpals.db";

struct Inner {
    writer: WriterHandle,
    reader: Mutex<Connection>,
    published: broadcast::Sender<Event>,
    database_path: PathBuf,
}

/// The store: cheap to clone, shared by every part of the orchestrator.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database_path", &self.inner.database_path)
            .finish()
    }
}

fn open_connection(path: &Path, durability: Durability) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and runs pending
    /// migrations.
    pub fn open(data_dir: &Path, durability: Durability) -> StoreResult<Self> {
        create_private_dir(data_dir)?;
        let database_path = data_dir.join(DATABASE_FILE);
        let mut writer_conn = open_connection(&database_path, durability).map_err(|e| match e {
            StoreError::Sqlite(source) => StoreError::DataDir {
                path: data_dir.to_path_buf(),
                source: std::io::Error::other(source),
            },
            other => other,
        })?;
        let found: i64 = writer_conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if usize::try_from(found).is_ok_and(|v| v > schema::SCHEMA_VERSION) {
            return Err(StoreError::TooNew {
                path: database_path,
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        schema::migrations().to_latest(&mut writer_conn)?;
        let head = writer_conn
            .query_row(
                "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1",
                [],
                |row| {
                    Ok(ChainHead {
                        next_id: row.get::<_, i64>(0)? + 1,
                        hash: row.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or(ChainHead {
                next_id: 1,
                hash: GENESIS_HASH.to_owned(),
            });
        let reader = open_connection(&database_path, durability)?;
        let (published, _) = broadcast::channel(PUBLISHED_EVENTS);
        let writer = WriterHandle::spawn(writer_conn, head, published.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                reader: Mutex::new(reader),
                published,
                database_path,
            }),
        })
    }

    /// The database file.
    pub fn database_path(&self) -> &Path {
        &self.inner.database_path
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
            let mut statement =
                conn.prepare_cached("SELECT state, COUNT(*) FROM tasks GROUP BY state")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut counts = Vec::new();
            for row in rows {
                let (state, count) = row?;
                counts.push((state, u64::try_from(count).unwrap_or(0)));
            }
            Ok(counts)
        })
        .await
    }

    /// How many approvals wait for a decision.
    pub async fn pending_approval_count(&self) -> StoreResult<u64> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT COUNT(*) FROM approvals WHERE state = 'pending'",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map(|count| u64::try_from(count).unwrap_or(0))?)
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
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .reader
                .lock()
                .map_err(|_| StoreError::Writer("the reader connection is poisoned".into()))?;
            op(&conn)
        })
        .await
        .map_err(|e| StoreError::Writer(format!("read task failed: {e}")))?
    }

    /// Runs `op` on a connection of its own (long reads: verify, export).
    async fn read_alone<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let path = self.inner.database_path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            op(&conn)
        })
        .await
        .map_err(|e| StoreError::Writer(format!("read task failed: {e}")))?
    }

    /// One task.
    pub async fn task(&self, id: &TaskId) -> StoreResult<Task> {
        let id = id.clone();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
                [id.as_str()],
                |row| Ok(task_from_row(row)),
            )
            .optional()?
            .ok_or(StoreError::TaskNotFound(id))?
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
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ?1 AND kind = ?2 \
                 ORDER BY id DESC LIMIT 1"
            ))?;
            statement
                .query_map(params![id, kind], |row| Ok(event_from_row(row)))?
                .next()
                .transpose()?
                .transpose()
        })
        .await
    }

    /// The id of the task numbered `seq` (the `#` number lists show).
    pub async fn task_id_by_seq(&self, seq: i64) -> StoreResult<Option<TaskId>> {
        self.read(move |conn| {
            let id: Option<String> = conn
                .query_row("SELECT id FROM tasks WHERE seq = ?1", [seq], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(id.and_then(|id| TaskId::parse(&id).ok()))
        })
        .await
    }

    /// All tasks, oldest first; only those in `states` when given.
    pub async fn tasks(&self, states: Option<Vec<TaskState>>) -> StoreResult<Vec<Task>> {
        self.read(move |conn| {
            let mut statement =
                conn.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY seq"))?;
            let rows = statement.query_map([], |row| Ok(task_from_row(row)))?;
            let mut tasks = Vec::new();
            for row in rows {
                let task = row??;
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
            let events = match query.task_id {
                Some(task_id) => {
                    let mut statement = conn.prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events \
                         WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                    ))?;
                    let rows = statement
                        .query_map(params![task_id.as_str(), query.after, limit], |row| {
                            Ok(event_from_row(row))
                        })?;
                    rows.map(|row| row?).collect::<StoreResult<Vec<_>>>()?
                }
                None => {
                    let mut statement = conn.prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
                    ))?;
                    let rows = statement
                        .query_map(params![query.after, limit], |row| Ok(event_from_row(row)))?;
                    rows.map(|row| row?).collect::<StoreResult<Vec<_>>>()?
                }
            };
            Ok(events)
        })
        .await
    }

    /// The last `limit` events before the event `before` (the newest when
    /// `None`), of one task and one kind when given, oldest first: a log
    /// read from its end and paged backwards.
    pub async fn events_before(&self, query: EventsBefore) -> StoreResult<Vec<Event>> {
        self.read(move |conn| {
            let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id < ?1");
            if query.task_id.is_some() {
                sql.push_str(" AND task_id = ?2");
            }
            if query.kind.is_some() {
                sql.push_str(" AND kind = ?3");
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?4");
            let mut statement = conn.prepare_cached(&sql)?;
            // Numbered parameters: one the statement does not use is bound
            // and ignored.
            let task = query.task_id.as_ref().map(TaskId::as_str);
            let bound = params![
                query.before.unwrap_or(i64::MAX),
                task,
                query.kind,
                i64::from(query.limit)
            ];
            let rows = statement.query_map(bound, |row| Ok(event_from_row(row)))?;
            let mut events = rows.map(|row| row?).collect::<StoreResult<Vec<_>>>()?;
            events.reverse();
            Ok(events)
        })
        .await
    }

    /// Every event kind the log holds, sorted.
    pub async fn event_kinds(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT DISTINCT kind FROM events ORDER BY kind")?;
            let kinds = statement.query_map([], |row| row.get(0))?;
            Ok(kinds.collect::<Result<Vec<String>, _>>()?)
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
            let marks = vec!["?"; step_kinds.len()].join(", ");
            let mut tasks =
                conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY seq"))?;
            let mut last = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ? AND kind IN ({marks}) \
                 ORDER BY id DESC LIMIT 1"
            ))?;
            let mut recent_checks = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ?1 AND kind = ?2 \
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let all = tasks
                .query_map([], |row| Ok(task_from_row(row)))?
                .map(|row| row?)
                .collect::<StoreResult<Vec<Task>>>()?;
            let mut out = Vec::with_capacity(all.len());
            for task in all {
                let id = task.id.as_str().to_owned();
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id];
                for kind in step_kinds {
                    values.push(kind);
                }
                let last_step = last
                    .query_map(values.as_slice(), |row| Ok(event_from_row(row)))?
                    .next()
                    .transpose()?
                    .transpose()?;
                let checks = recent_checks
                    .query_map(params![id, check_kind, checks], |row| {
                        Ok(event_from_row(row))
                    })?
                    .map(|row| row?)
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
            Ok(
                conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| {
                    row.get(0)
                })?,
            )
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
            let mut statement = conn.prepare(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals \
                 WHERE (?1 IS NULL OR task_id = ?1) AND (NOT ?2 OR state = 'pending') ORDER BY id"
            ))?;
            let rows = statement.query_map(params![task_id, pending_only], |row| {
                Ok(approval_from_row(row))
            })?;
            rows.map(|row| row?).collect()
        })
        .await
    }

    /// One approval.
    pub async fn approval(&self, id: ApprovalId) -> StoreResult<Approval> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                |row| Ok(approval_from_row(row)),
            )
            .optional()?
            .ok_or(StoreError::ApprovalNotFound(id))?
        })
        .await
    }

    /// A blob's content by its hash.
    pub async fn blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row("SELECT content FROM blobs WHERE hash = ?1", [hash], |row| {
                    row.get(0)
                })
                .optional()?)
        })
        .await
    }

    /// The newest event of a kind, if any.
    pub async fn last_event_of_kind(&self, kind: &'static str) -> StoreResult<Option<Event>> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE kind = ?1 ORDER BY id DESC LIMIT 1"
            ))?;
            let mut rows = statement.query_map([kind], |row| Ok(event_from_row(row)))?;
            rows.next().transpose()?.transpose()
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
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events \
                 WHERE kind = ?1 AND json_extract(payload, '$.repo') = ?2 \
                 ORDER BY id DESC LIMIT 1"
            ))?;
            let mut rows =
                statement.query_map(params![kind, repo], |row| Ok(event_from_row(row)))?;
            rows.next().transpose()?.transpose()
        })
        .await
    }

    /// The bytes of every stored blob together.
    pub async fn blob_bytes(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let total: i64 =
                conn.query_row("SELECT COALESCE(SUM(size), 0) FROM blobs", [], |row| {
                    row.get(0)
                })?;
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

    /// Recomputes the hash chain over the whole log.
    pub async fn verify_chain(&self) -> StoreResult<AuditReport> {
        self.read_alone(audit::verify).await
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

pub(crate) fn create_private_dir(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StoreError::DataDir {
            path: path.to_path_buf(),
            source,
        })?;
    // Probe writability now, so the error names the directory rather than
    // surfacing later as a database error.
    let probe = path.join(".write-probe");
    std::fs::write(&probe, b"").map_err(|source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
