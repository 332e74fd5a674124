//! The repositories one server serves: registered, listed and removed in
//! the same writer as the tasks that name them, so a task cannot be created
//! in a repository being removed, nor a repository removed under a task.

use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::sql::{Db, Row, params};
use crate::write_tx::WriteTx;
use pushpals_core::payload::{RepoAdded, RepoRemoved};
use pushpals_core::timestamp::now;
use pushpals_core::{Actor, NewEvent, TaskState};

/// A registered repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepositoryRecord {
    /// Its name on this server (`--repo NAME`, `in NAME:` in chat).
    pub name: String,
    /// The checkout tasks branch from.
    pub path: String,
    /// The URL it was cloned from, without credentials; `None` for a local
    /// checkout used in place.
    pub origin: Option<String>,
    /// The base branch asked for; `None`: the remote's default (or the
    /// checkout's current branch).
    pub branch: Option<String>,
    /// Its directory in the data directory: its clone (when cloned), warm
    /// caches and overlay layers. The data directory itself for the
    /// repository an older, one-repository server served.
    pub home: String,
    /// Who registered it.
    pub added_by: String,
    /// When (RFC 3339).
    pub added_at: String,
}

impl RepositoryRecord {
    /// Whether its checkout is a clone the server made (in its data
    /// directory), which removing the repository deletes.
    pub fn is_clone(&self) -> bool {
        self.origin.is_some()
    }
}

/// What [`WriteTx::add_repository`] records.
#[derive(Debug, Clone)]
pub struct NewRepository<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its checkout.
    pub path: &'a str,
    /// The URL it was cloned from (credentials already stripped).
    pub origin: Option<&'a str>,
    /// The base branch asked for.
    pub branch: Option<&'a str>,
    /// Its directory in the data directory.
    pub home: &'a str,
}

/// States in which a task still needs its repository.
const BUSY_STATES: [TaskState; 7] = [
    TaskState::Queued,
    TaskState::Preparing,
    TaskState::Running,
    TaskState::Waiting,
    TaskState::Checking,
    TaskState::AwaitingApproval,
    TaskState::Interrupted,
];

/// The tables whose rows belong to one repository.
const OWNED_TABLES: [&str; 5] = ["tasks", "grants", "findings", "durations", "test_results"];

impl WriteTx<'_> {
    /// Registers a repository. The first one registered takes over the rows
    /// written before the server served several (an upgraded data
    /// directory). A name or path already registered is
    /// [`StoreError::Duplicate`].
    pub fn add_repository(
        &mut self,
        new: &NewRepository<'_>,
        by: Actor,
    ) -> StoreResult<RepositoryRecord> {
        if let Some(existing) = repository(self.tx, new.name)? {
            return Err(StoreError::Duplicate(format!(
                "a repository named {:?} is already registered ({})",
                existing.name, existing.path
            )));
        }
        let clash: Option<String> = self
            .tx
            .query_opt(
                "SELECT name FROM repositories WHERE path = ?1",
                &params![new.path],
            )?
            .map(|row| row.get(0))
            .transpose()?;
        if let Some(other) = clash {
            return Err(StoreError::Duplicate(format!(
                "{} is already registered as {other:?}",
                new.path
            )));
        }
        let first = repositories(self.tx)?.is_empty();
        self.tx.execute(
            "INSERT INTO repositories (name, path, origin, branch, home, added_by, added_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &params![
                new.name,
                new.path,
                new.origin,
                new.branch,
                new.home,
                by.to_string(),
                now()
            ],
        )?;
        let mut adopted = 0u64;
        if first {
            for table in OWNED_TABLES {
                let changed = self.tx.execute(
                    &format!("UPDATE {table} SET repo = ?1 WHERE repo = ''"),
                    &params![new.name],
                )?;
                if matches!(table, "tasks" | "grants" | "findings") {
                    adopted += changed;
                }
            }
        }
        let event = NewEvent::typed(
            None,
            by,
            &RepoAdded {
                repo: new.name.to_owned(),
                path: new.path.to_owned(),
                origin: new.origin.map(str::to_owned),
                branch: new.branch.map(str::to_owned),
                adopted,
            },
        )?;
        self.append(event)?;
        repository(self.tx, new.name)?
            .ok_or_else(|| StoreError::RepositoryNotFound(new.name.to_owned()))
    }

    /// Takes a repository off the server: refused with
    /// [`StoreError::RepositoryBusy`] while a task in it is queued, under
    /// way, waiting for the person or interrupted (cancel those first).
    /// Its grants and findings go with it; its finished tasks stay in the
    /// history under its name.
    pub fn remove_repository(
        &mut self,
        name: &str,
        deleted_clone: bool,
        by: Actor,
    ) -> StoreResult<RepositoryRecord> {
        let record = repository(self.tx, name)?
            .ok_or_else(|| StoreError::RepositoryNotFound(name.into()))?;
        let busy = busy_tasks(self.tx, name)?;
        if !busy.is_empty() {
            return Err(StoreError::RepositoryBusy {
                name: name.to_owned(),
                tasks: busy,
            });
        }
        self.tx
            .execute("DELETE FROM repositories WHERE name = ?1", &params![name])?;
        for table in ["grants", "findings"] {
            self.tx.execute(
                &format!("DELETE FROM {table} WHERE repo = ?1"),
                &params![name],
            )?;
        }
        let event = NewEvent::typed(
            None,
            by,
            &RepoRemoved {
                repo: name.to_owned(),
                deleted_clone,
            },
        )?;
        self.append(event)?;
        Ok(record)
    }

    /// Whether rows from before the server held several repositories wait
    /// for the first one registered.
    pub fn has_unowned_rows(&self) -> StoreResult<bool> {
        Ok(repositories(self.tx)?.is_empty()
            && self
                .tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE repo = '')",
                    &params![],
                )?
                .get::<bool>(0)?)
    }

    /// A registered repository, in this transaction.
    pub fn repository(&self, name: &str) -> StoreResult<Option<RepositoryRecord>> {
        repository(self.tx, name)
    }
}

impl Store {
    /// The registered repositories, by name.
    pub async fn repositories(&self) -> StoreResult<Vec<RepositoryRecord>> {
        self.read(repositories).await
    }

    /// The numbers (`#N`) of a repository's tasks that still need it.
    pub async fn busy_tasks(&self, name: &str) -> StoreResult<Vec<u64>> {
        let name = name.to_owned();
        self.read(move |conn| busy_tasks(conn, &name)).await
    }
}

const COLUMNS: &str = "name, path, origin, branch, home, added_by, added_at";

fn from_row(row: &Row) -> StoreResult<RepositoryRecord> {
    Ok(RepositoryRecord {
        name: row.get(0)?,
        path: row.get(1)?,
        origin: row.get(2)?,
        branch: row.get(3)?,
        home: row.get(4)?,
        added_by: row.get(5)?,
        added_at: row.get(6)?,
    })
}

fn repositories(conn: &dyn Db) -> StoreResult<Vec<RepositoryRecord>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM repositories ORDER BY name"),
        &params![],
    )?
    .iter()
    .map(from_row)
    .collect()
}

fn repository(conn: &dyn Db, name: &str) -> StoreResult<Option<RepositoryRecord>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM repositories WHERE name = ?1"),
        &params![name],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Tasks of `name` in a busy state, or with an approval pending.
fn busy_tasks(conn: &dyn Db, name: &str) -> StoreResult<Vec<u64>> {
    let states: Vec<String> = BUSY_STATES
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let rows = conn.query(&format!(
        "SELECT seq FROM tasks WHERE repo = ?1 AND (state IN ({}) OR EXISTS \
           (SELECT 1 FROM approvals WHERE approvals.task_id = tasks.id AND approvals.state = 'pending')) \
         ORDER BY seq",
        states.join(", ")
    ), &params![name])?;
    let mut seqs = Vec::new();
    for row in rows {
        seqs.push(u64::try_from(row.get::<i64>(0)?).unwrap_or(0));
    }
    Ok(seqs)
}
