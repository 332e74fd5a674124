//! The store's errors.

use pushpals_core::{ApprovalId, InvalidTransition, TaskId};
use std::path::PathBuf;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot be created or written.
    #[error(
        "the data directory {path} cannot be used: {source}; choose another with --data-dir or fix its permissions"
    )]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another server holds the data directory.
    #[error(
        "another Push Pals server is already using {path} ({holder}); stop it first or use another --data-dir"
    )]
    AlreadyInUse {
        /// The data directory.
        path: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("database error: {0}")]
    Postgres(#[from] postgres::Error),
    /// The PostgreSQL database cannot be used (it does not answer, the URL
    /// is wrong); nothing was started.
    #[error(
        "the database at {url} cannot be used: {problem}; check --database (or [store] url in config.toml) and that the server runs; nothing was started"
    )]
    Database {
        /// Its URL, without a password.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// Another Push Pals server writes to this PostgreSQL database.
    #[error(
        "another Push Pals server already writes to the database at {0}: stop it first, or give this one a database of its own"
    )]
    DatabaseInUse(String),
    /// The database was written by a newer Push Pals.
    #[error(
        "{path} has schema version {found}, but this build of Push Pals knows versions up to {supported}: upgrade pushpals, or point it at a database of this version; nothing was changed"
    )]
    TooNew {
        /// The database file (or a PostgreSQL URL, without its password).
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: usize,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// No task with this id.
    #[error("no task with id {0}")]
    TaskNotFound(TaskId),
    /// No approval with this id.
    #[error("no approval with id {0}")]
    ApprovalNotFound(ApprovalId),
    /// The approval was already decided.
    #[error("approval {id} was already {state}")]
    AlreadyDecided {
        /// The approval.
        id: ApprovalId,
        /// What it is now.
        state: String,
    },
    /// A state change the state machine does not allow.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// A stored value is not what the schema says.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The writer thread stopped or the commit failed.
    #[error("the database writer failed: {0}")]
    Writer(String),
    /// The disk holding the database is full; nothing of the write was
    /// kept.
    #[error(
        "the disk holding the database is full, so nothing was written ({0}): free space \
         (`pushpals gc`, `pushpals du`, or other files on that disk) and try again; \
         reading still works"
    )]
    DiskFull(String),
    /// A value could not be encoded as JSON for its column.
    #[error("cannot encode a value for the store: {0}")]
    Encode(#[from] serde_json::Error),
    /// A backup cannot be made or used.
    #[error("{0}")]
    Backup(String),
    /// Writing an export failed.
    #[error("writing the export failed: {0}")]
    Export(#[source] std::io::Error),
    /// No repository of this name is registered.
    #[error(
        "no repository named {0:?} is registered here: `pushpals repo list` shows the names, \
         `pushpals repo add URL|PATH` adds one"
    )]
    RepositoryNotFound(String),
    /// The repository still has tasks that need it.
    #[error(
        "repository {name:?} still has tasks that need it ({}): cancel them or let them finish, then remove it",
        .tasks.iter().map(|n| format!("#{n}")).collect::<Vec<_>>().join(", ")
    )]
    RepositoryBusy {
        /// The repository.
        name: String,
        /// Its tasks (`#N`) that are queued, under way, waiting or interrupted.
        tasks: Vec<u64>,
    },
    /// A store cannot be moved to another database; the target was left
    /// as it was.
    #[error("the store cannot be migrated: {0}")]
    Migrate(String),
    /// A row with the same key (an id, a name) is already there; nothing
    /// of the write was kept.
    #[error("already recorded: {0}")]
    Duplicate(String),
}

impl StoreError {
    /// The same error, as [`StoreError::DiskFull`] when the database said
    /// the disk is full, or [`StoreError::Duplicate`] when a key is taken
    /// (by the database's error code, never its message).
    pub(crate) fn classified(self) -> Self {
        match &self {
            Self::Sqlite(error) if is_disk_full(error) => Self::DiskFull(error.to_string()),
            Self::Sqlite(error) if is_duplicate_key(error) => Self::Duplicate(error.to_string()),
            Self::Postgres(error) => match error.code() {
                Some(code) if *code == postgres::error::SqlState::UNIQUE_VIOLATION => {
                    Self::Duplicate(error.to_string())
                }
                Some(code) if *code == postgres::error::SqlState::DISK_FULL => {
                    Self::DiskFull(error.to_string())
                }
                _ => self,
            },
            _ => self,
        }
    }
}

/// Whether SQLite failed because the disk (or the database's size limit)
/// is full.
pub(crate) fn is_disk_full(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// Whether SQLite refused a row because its primary key or a unique
/// column is taken (by the constraint's code, not its message).
fn is_duplicate_key(error: &rusqlite::Error) -> bool {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => matches!(
            failure.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        ),
        _ => false,
    }
}

/// Shorthand for the store's results.
pub type StoreResult<T> = Result<T, StoreError>;
