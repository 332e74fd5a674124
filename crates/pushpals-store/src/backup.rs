//! Backups: SQLite's online backup (safe while the server writes), and
//! checking a backup before it is restored.

use crate::error::{StoreError, StoreResult};
use crate::{DATABASE_FILE, Durability, Store};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    /// Events in it.
    pub events: i64,
    /// Tasks in it.
    pub tasks: i64,
    /// The last event's id and hash (compare with the live log).
    pub head_id: Option<i64>,
    /// The last event's hash.
    pub head_hash: Option<String>,
}

fn counts(conn: &Connection) -> StoreResult<BackupReport> {
    let events: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    let tasks: i64 = conn.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))?;
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    Ok(BackupReport {
        events,
        tasks,
        head_id: head.as_ref().map(|(id, _)| *id),
        head_hash: head.map(|(_, hash)| hash),
    })
}

/// Copies the store in `data_dir` to `destination` (a new file) with
/// SQLite's online backup, while a server may be writing.
pub fn backup(data_dir: &Path, destination: &Path) -> StoreResult<BackupReport> {
    let source_path = data_dir.join(DATABASE_FILE);
    if !source_path.exists() {
        return Err(StoreError::Backup(format!(
            "there is no database at {}; pass the server's --data-dir",
            source_path.display()
        )));
    }
    if destination.exists() {
        return Err(StoreError::Backup(format!(
            "{} exists already; choose a new file",
            destination.display()
        )));
    }
    let source = Connection::open_with_flags(
        &source_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    source.backup(rusqlite::MAIN_DB, destination, None)?;
    let copy = Connection::open_with_flags(destination, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    counts(&copy)
}

/// Checks a backup: it opens, it is not from a newer Push Pals, and its
/// chain verifies. It is checked on a scratch copy in `scratch_dir`, so the
/// file itself is not changed.
pub async fn check_backup(backup_file: &Path, scratch_dir: &Path) -> StoreResult<BackupReport> {
    std::fs::copy(backup_file, scratch_dir.join(DATABASE_FILE))
        .map_err(|e| StoreError::Backup(format!("cannot read {}: {e}", backup_file.display())))?;
    let store = Store::open(scratch_dir, Durability::Normal)?;
    let report = store.verify_chain().await?;
    if !report.ok {
        return Err(StoreError::Backup(format!(
            "the backup's event log is broken at event {}: {}",
            report.first_broken_event.unwrap_or_default(),
            report.problem.unwrap_or_default()
        )));
    }
    drop(store);
    let conn = Connection::open(scratch_dir.join(DATABASE_FILE))?;
    counts(&conn)
}
