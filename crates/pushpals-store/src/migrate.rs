//! Moving a store to another database (`pushpals store migrate --to URL`):
//! SQLite to PostgreSQL, or back. The source's chain is verified first;
//! every row is copied in one transaction of the target, whose chain is
//! verified before that transaction commits, so the target either holds
//! the whole store with the same chain head or nothing.

use crate::audit::{AuditReport, verify};
use crate::error::{StoreError, StoreResult};
use crate::sql::{Backend, Db, Value, params};
use crate::{Database, Durability};
use serde::Serialize;

/// Each table, its columns, and the order its rows are read in. Parents
/// come before the rows that name them (tasks before approvals).
const TABLES: [(&str, &str, &str); 15] = [
    (
        "repositories",
        "name, path, origin, branch, home, added_by, added_at",
        "name",
    ),
    (
        "tasks",
        "id, seq, title, command, state, base_commit, branch, worktree_path, reason, \
         commit_sha, created_at, updated_at, agent, model_calls, input_tokens, output_tokens, \
         cost_micros, repo",
        "seq",
    ),
    (
        "events",
        "id, task_id, time, actor, kind, payload, prev_hash, hash",
        "id",
    ),
    (
        "approvals",
        "id, task_id, action, state, summary, requested_at, decided_at, decided_by, reason",
        "id",
    ),
    ("blobs", "hash, size, content", "hash"),
    (
        "tokens",
        "id, name, token_hash, scopes, created_at, revoked_at",
        "id",
    ),
    (
        "workers",
        "name, labels, enrol_hash, enrol_expires, added_by, added_at, enrolled_at, token_id, \
         cores, version, last_seen, revoked_at",
        "name",
    ),
    (
        "pairing_codes",
        "id, code_hash, scopes, created_at, expires_at, used_at",
        "id",
    ),
    (
        "push_subscriptions",
        "id, token_name, endpoint, p256dh, auth, created_at",
        "id",
    ),
    (
        "durations",
        "id, subject, commit_sha, seconds, at, repo",
        "id",
    ),
    (
        "test_results",
        "id, test, commit_sha, passed, failed, at, repo",
        "id",
    ),
    ("readiness", "id, checked_at", "id"),
    ("chat_lines", "id, device, at, who, text", "id"),
    ("grants", "repo, kind, granted_by, granted_at", "repo, kind"),
    (
        "findings",
        "repo, fingerprint, kind, severity, title, file, line, evidence, state, first_seen, \
         last_seen, reason",
        "repo, fingerprint",
    ),
];

/// Tables whose ids PostgreSQL hands out: their counters are moved past
/// the copied rows.
const IDENTITY_TABLES: [&str; 7] = [
    "approvals",
    "tokens",
    "pairing_codes",
    "push_subscriptions",
    "durations",
    "test_results",
    "chat_lines",
];

/// What a migration copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Rows copied, per table, in the order they were copied.
    pub rows: Vec<(String, u64)>,
    /// The source's chain, verified before copying.
    pub before: AuditReport,
    /// The target's chain, verified before the copy was committed.
    pub after: AuditReport,
}

/// Copies the store in `source` into `target`, which must hold no store
/// yet (an empty database, or a data directory without one). The source is
/// opened as a server opens it (brought to this build's schema, its
/// PostgreSQL lock taken, so no server writes to it meanwhile) and its rows
/// are only read; a failure leaves the target as it was.
pub fn migrate(source: &Database, target: &Database) -> StoreResult<MigrationReport> {
    if source == target {
        return Err(StoreError::Migrate(
            "the source and the target are the same database".into(),
        ));
    }
    // PostgreSQL's client may not block a thread that drives async tasks:
    // the whole copy runs on a thread of its own.
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> StoreResult<MigrationReport> {
                let (from, _, _, _) = crate::database::open_backend(source, Durability::Normal)?;
                let (to, _, _, _) = crate::database::open_backend(target, Durability::Full)?;
                copy(from.as_ref(), to.as_ref(), target)
            })
            .join()
            .map_err(|_| StoreError::Migrate("the copy panicked".into()))?
    })
}

fn copy(from: &dyn Db, to: &dyn Db, target: &Database) -> StoreResult<MigrationReport> {
    let before = verify(from)?;
    if !before.ok {
        return Err(StoreError::Migrate(format!(
            "the source's event log is broken at event {} ({}); nothing was copied",
            before.first_broken_event.unwrap_or_default(),
            before.problem.clone().unwrap_or_default()
        )));
    }
    for (table, _, _) in TABLES {
        let held: i64 = to
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &params![])?
            .get(0)?;
        if held > 0 && table != "readiness" {
            return Err(StoreError::Migrate(format!(
                "{target} already holds a store ({held} rows in {table}); migrate into an empty \
                 database"
            )));
        }
    }
    to.batch("BEGIN")?;
    match copy_rows(from, to) {
        Ok(rows) => {
            let after = verify(to)?;
            if after.head_id != before.head_id || after.head_hash != before.head_hash || !after.ok {
                let _ = to.batch("ROLLBACK");
                return Err(StoreError::Migrate(format!(
                    "the copy's chain head ({:?} {:?}) is not the source's ({:?} {:?}); nothing \
                     was kept",
                    after.head_id, after.head_hash, before.head_id, before.head_hash
                )));
            }
            to.batch("COMMIT")?;
            Ok(MigrationReport {
                rows,
                before,
                after,
            })
        }
        Err(error) => {
            let _ = to.batch("ROLLBACK");
            Err(error)
        }
    }
}

fn copy_rows(from: &dyn Db, to: &dyn Db) -> StoreResult<Vec<(String, u64)>> {
    let mut copied = Vec::with_capacity(TABLES.len());
    // The readiness row is written at every probe; the target's own goes.
    to.execute("DELETE FROM readiness", &params![])?;
    for (table, columns, order) in TABLES {
        let marks: Vec<String> = (1..=columns.split(',').count())
            .map(|n| format!("?{n}"))
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({columns}) VALUES ({})",
            marks.join(", ")
        );
        let mut count = 0u64;
        from.for_each(
            &format!("SELECT {columns} FROM {table} ORDER BY {order}"),
            &params![],
            &mut |row| {
                let values: Vec<Value> = row.into_values();
                to.execute(&insert, &values)?;
                count += 1;
                Ok(())
            },
        )?;
        copied.push((table.to_owned(), count));
    }
    if to.backend() == Backend::Postgres {
        for table in IDENTITY_TABLES {
            to.query_one(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ),
                &params![],
            )?;
        }
    }
    Ok(copied)
}
