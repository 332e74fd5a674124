//! Verifying and exporting the event log.

use crate::error::{StoreError, StoreResult};
use crate::rows::{EVENT_COLUMNS, event_from_row};
use crate::sql::{Db, params};
use pushpals_core::chain::ChainVerifier;
use serde::Serialize;
use std::io::Write;

/// The result of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// True when every event's links and hash hold.
    pub ok: bool,
    /// How many events passed before the first break (all of them when ok).
    pub checked: u64,
    /// The id of the last event in the log (compare with a head recorded
    /// elsewhere to catch a truncated tail).
    pub head_id: Option<i64>,
    /// The stored hash of the last event.
    pub head_hash: Option<String>,
    /// The first broken event, if any.
    pub first_broken_event: Option<i64>,
    /// What is wrong with it.
    pub problem: Option<String>,
}

/// Recomputes the chain over every event, in id order.
pub(crate) fn verify(conn: &dyn Db) -> StoreResult<AuditReport> {
    let mut verifier = ChainVerifier::default();
    let mut head: Option<i64> = None;
    let mut head_hash = String::new();
    let mut broken = None;
    conn.for_each_event(&mut |row| {
        if broken.is_none()
            && let Err(chain_break) = verifier.check(*row)
        {
            broken = Some(chain_break);
        }
        head = Some(row.id);
        row.hash.clone_into(&mut head_hash);
        Ok(())
    })?;
    let (head_id, head_hash) = (head, head.map(|_| head_hash));
    Ok(AuditReport {
        ok: broken.is_none(),
        checked: verifier.checked(),
        head_id,
        head_hash,
        first_broken_event: broken.as_ref().map(|b| b.event_id),
        problem: broken.map(|b| b.to_string()),
    })
}

/// Writes every event as one JSON object per line, in id order, with the
/// repository it concerns as `repo` (its task's, or the one its payload
/// names) beside the hashed fields; `audit verify` does not read it.
pub(crate) fn export_jsonl(conn: &dyn Db, out: &mut dyn Write) -> StoreResult<u64> {
    let mut written = 0;
    let mut each = |row: crate::sql::Row| -> StoreResult<()> {
        let event = event_from_row(&row)?;
        let task_repo: Option<String> = row.get(8)?;
        let repo = task_repo
            .filter(|r| !r.is_empty())
            .or_else(|| event.payload["repo"].as_str().map(str::to_owned));
        let mut line = serde_json::to_value(&event)?;
        if let (Some(repo), Some(object)) = (repo, line.as_object_mut()) {
            object.insert("repo".into(), serde_json::Value::String(repo));
        }
        serde_json::to_writer(&mut *out, &line)
            .map_err(|e| StoreError::Export(std::io::Error::other(e)))?;
        out.write_all(b"\n").map_err(StoreError::Export)?;
        written += 1;
        Ok(())
    };
    conn.for_each(
        &format!(
            "SELECT {EVENT_COLUMNS}, (SELECT repo FROM tasks WHERE tasks.id = events.task_id) \
             FROM events ORDER BY id"
        ),
        &params![],
        &mut each,
    )?;
    Ok(written)
}
