//! Where the store keeps its state and opening it: SQLite in a data
//! directory or PostgreSQL at a URL, each connection set up (pragmas, the
//! leader lock, durability), migrated and read back to the end of its chain.

use crate::error::{StoreError, StoreResult};
use crate::schema;
use crate::sql::{self, Backend, Db, params};
use crate::write_tx::ChainHead;
use crate::{Durability, redacted_url};
use pushpals_core::chain::GENESIS_HASH;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "pushpals.db";

/// Where the store keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// SQLite, in this data directory (the default).
    Sqlite(PathBuf),
    /// PostgreSQL, at this URL (`postgres://user@host/db`, or `key=value`
    /// settings).
    Postgres(String),
}

impl Database {
    /// A PostgreSQL database at `url`, checked to be one: a `postgres://`
    /// or `postgresql://` URL, or libpq's `key=value` settings naming a
    /// host or a database.
    pub fn postgres(url: &str) -> StoreResult<Self> {
        let url = url.trim();
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let is_settings = !url.contains("://")
            && url
                .split_whitespace()
                .any(|word| word.starts_with("host=") || word.starts_with("dbname="));
        if !(is_url || is_settings) {
            return Err(StoreError::Database {
                url: redacted_url(url),
                problem: "it is not a PostgreSQL URL; give one like \
                          postgres://pushpals@db.example/pushpals, or leave it out for SQLite \
                          in the data directory"
                    .into(),
            });
        }
        Ok(Self::Postgres(url.to_owned()))
    }

    /// Which backend it is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(dir) => write!(f, "SQLite at {}", dir.join(DATABASE_FILE).display()),
            Self::Postgres(url) => write!(f, "PostgreSQL at {}", redacted_url(url)),
        }
    }
}

/// The key of the PostgreSQL advisory lock a server holds on its database
/// while it runs ("pushpals" in ASCII).
const LEADER_LOCK: i64 = 0x7075_7368_7061_6c73;

/// How many times the leader lock is tried, 200 ms apart.
const LEADER_LOCK_TRIES: u32 = 15;

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

/// The writer's and a reader's connections to `database`, its SQLite file
/// (if any), and the end of its chain.
pub(crate) type Opened = (
    Box<dyn Db + Send>,
    Box<dyn Db + Send>,
    Option<PathBuf>,
    ChainHead,
);

pub(crate) fn open_backend(database: &Database, durability: Durability) -> StoreResult<Opened> {
    let (writer, reader, database_path): (Box<dyn Db + Send>, Box<dyn Db + Send>, _) =
        match database {
            Database::Sqlite(data_dir) => {
                let (writer, reader, path) = open_sqlite(data_dir, durability)?;
                (Box::new(writer), Box::new(reader), Some(path))
            }
            Database::Postgres(url) => {
                let (writer, reader) = open_postgres(url, durability)?;
                (Box::new(writer), Box::new(reader), None)
            }
        };
    let head = writer
        .query_opt(
            "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1",
            &params![],
        )?
        .map(|row| -> StoreResult<ChainHead> {
            Ok(ChainHead {
                next_id: row.get::<i64>(0)? + 1,
                hash: row.get(1)?,
            })
        })
        .transpose()?
        .unwrap_or(ChainHead {
            next_id: 1,
            hash: GENESIS_HASH.to_owned(),
        });
    Ok((writer, reader, database_path, head))
}

/// A new read connection to `database` (long reads: verify, export).
pub(crate) fn open_reader(database: &Database) -> StoreResult<Box<dyn Db>> {
    Ok(match database {
        Database::Sqlite(dir) => Box::new(Connection::open_with_flags(
            dir.join(DATABASE_FILE),
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?),
        Database::Postgres(url) => Box::new(sql::postgres::PgConn::connect(url)?),
    })
}

/// Opens SQLite in `data_dir`: the writer's connection (migrated) and a
/// reader's, and the database file.
fn open_sqlite(
    data_dir: &Path,
    durability: Durability,
) -> StoreResult<(Connection, Connection, PathBuf)> {
    create_private_dir(data_dir)?;
    let database_path = data_dir.join(DATABASE_FILE);
    let mut writer = open_connection(&database_path, durability).map_err(|e| match e {
        StoreError::Sqlite(source) => StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source: std::io::Error::other(source),
        },
        other => other,
    })?;
    let found: i64 = writer.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if usize::try_from(found).is_ok_and(|v| v > schema::SCHEMA_VERSION) {
        return Err(StoreError::TooNew {
            path: database_path,
            found,
            supported: schema::SCHEMA_VERSION,
        });
    }
    schema::migrations().to_latest(&mut writer)?;
    let reader = open_connection(&database_path, durability)?;
    Ok((writer, reader, database_path))
}

/// Connects to PostgreSQL at `url` twice (the writer, a reader), takes the
/// database's leader lock on the writer's connection (held while it lives),
/// sets the durability and runs the migrations.
fn open_postgres(
    url: &str,
    durability: Durability,
) -> StoreResult<(sql::postgres::PgConn, sql::postgres::PgConn)> {
    let writer = sql::postgres::PgConn::connect(url)?;
    // A server that just stopped may still be closing its connection: its
    // lock is waited for a little before the database counts as taken.
    let mut tries = 0;
    loop {
        let leader: bool = writer
            .query_one("SELECT pg_try_advisory_lock(?1)", &params![LEADER_LOCK])?
            .get(0)?;
        if leader {
            break;
        }
        tries += 1;
        if tries == LEADER_LOCK_TRIES {
            return Err(StoreError::DatabaseInUse(redacted_url(url)));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Normal: a commit returns before PostgreSQL flushed it, so a crash of
    // the database server (not of ours) may lose the last ones, like
    // SQLite's `synchronous = NORMAL` on a power cut.
    writer.batch(match durability {
        Durability::Normal => "SET synchronous_commit = off",
        Durability::Full => "SET synchronous_commit = on",
    })?;
    schema::migrate_postgres(&writer, url)?;
    let reader = sql::postgres::PgConn::connect(url)?;
    Ok((writer, reader))
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
