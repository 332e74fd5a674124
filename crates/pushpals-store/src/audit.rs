//! Verifying and exporting the event log.

use crate::error::{StoreError, StoreResult};
use crate::rows::{EVENT_COLUMNS, event_from_row};
use crate::sql::{Db, params};
use pushpals_core::chain::{BreakReason, ChainBreak, ChainVerifier};
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

/// Below this many events the log is verified in one pass.
const SPLIT_FROM: i64 = 20_000;
/// The most stretches verified side by side.
const MOST_STRETCHES: usize = 4;

/// One stretch of the log, verified on its own connection.
struct Stretch {
    verifier: ChainVerifier,
    broken: Option<ChainBreak>,
    /// The first and the last event seen, with the last one's hash.
    first_id: Option<i64>,
    last: Option<(i64, String)>,
}

/// Verifies the events with ids in `from..to`; the first stretch starts
/// from the genesis hash, the others from the hash their first event names.
fn verify_stretch(conn: &dyn Db, from: i64, to: i64) -> StoreResult<Stretch> {
    let mut stretch = Stretch {
        verifier: if from == 1 {
            ChainVerifier::default()
        } else {
            ChainVerifier::for_stretch(from)
        },
        broken: None,
        first_id: None,
        last: None,
    };
    let mut last_hash = String::new();
    conn.for_each_event(from, to, &mut |row| {
        stretch.first_id.get_or_insert(row.id);
        if stretch.broken.is_none()
            && let Err(chain_break) = stretch.verifier.check(*row)
        {
            stretch.broken = Some(chain_break);
        }
        row.hash.clone_into(&mut last_hash);
        stretch.last = Some((row.id, String::new()));
        Ok(())
    })?;
    if let Some((_, hash)) = &mut stretch.last {
        *hash = last_hash;
    }
    Ok(stretch)
}

/// Recomputes the chain over every event. A long log is cut into
/// stretches verified side by side, each on a connection and thread of its
/// own (every event's hash covers the `prev_hash` it stores, so a stretch
/// needs nothing from the one before); then each stretch's first event must
/// follow the last one before it, by id and by hash. `open` gives a new
/// read connection.
pub(crate) fn verify_log(
    open: &(dyn Fn() -> StoreResult<Box<dyn Db>> + Sync),
) -> StoreResult<AuditReport> {
    let last_id: i64 = open()?
        .query_one("SELECT COALESCE(MAX(id), 0) FROM events", &params![])?
        .get(0)?;
    let parts = if last_id < SPLIT_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MOST_STRETCHES)
    };
    let size = (last_id / i64::try_from(parts).unwrap_or(1)).max(1);
    let bounds: Vec<(i64, i64)> = (0..parts)
        .map(|k| {
            let k = i64::try_from(k).unwrap_or(0);
            let from = 1 + k * size;
            let to = if k + 1 == i64::try_from(parts).unwrap_or(1) {
                i64::MAX
            } else {
                1 + (k + 1) * size
            };
            (from, to)
        })
        .collect();
    let stretches: Vec<StoreResult<Stretch>> = std::thread::scope(|scope| {
        let running: Vec<_> = bounds
            .iter()
            .map(|&(from, to)| scope.spawn(move || verify_stretch(open()?.as_ref(), from, to)))
            .collect();
        running
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| StoreError::Writer("verifying a stretch panicked".into()))?
            })
            .collect()
    });
    let stretches = stretches.into_iter().collect::<StoreResult<Vec<_>>>()?;
    // The head is the last event the stretches read (a write after them
    // is not claimed as verified).
    let (head_id, head_hash) = stretches.iter().rev().find_map(|s| s.last.clone()).unzip();
    let mut checked = 0;
    let mut broken: Option<ChainBreak> = None;
    let mut before: Option<(i64, String)> = None;
    for stretch in stretches {
        let Some(first_id) = stretch.first_id else {
            continue;
        };
        if let Some((last_id, last_hash)) = &before {
            if first_id != last_id + 1 {
                broken = Some(ChainBreak {
                    event_id: first_id,
                    reason: BreakReason::Gap {
                        expected_id: last_id + 1,
                    },
                });
                break;
            }
            if stretch.verifier.entry_hash() != Some(last_hash.as_str()) {
                broken = Some(ChainBreak {
                    event_id: first_id,
                    reason: BreakReason::PrevHashMismatch {
                        expected: last_hash.clone(),
                    },
                });
                break;
            }
        }
        checked += stretch.verifier.checked();
        if stretch.broken.is_some() {
            broken = stretch.broken;
            break;
        }
        before = stretch.last;
    }
    Ok(AuditReport {
        ok: broken.is_none(),
        checked,
        head_id,
        head_hash,
        first_broken_event: broken.as_ref().map(|b| b.event_id),
        problem: broken.map(|b| b.to_string()),
    })
}

/// Recomputes the chain over every event on one connection (a copy being
/// made, which only its own connection sees).
pub(crate) fn verify(conn: &dyn Db) -> StoreResult<AuditReport> {
    let stretch = verify_stretch(conn, 1, i64::MAX)?;
    let (head_id, head_hash) = stretch.last.unzip();
    Ok(AuditReport {
        ok: stretch.broken.is_none(),
        checked: stretch.verifier.checked(),
        head_id,
        head_hash,
        first_broken_event: stretch.broken.as_ref().map(|b| b.event_id),
        problem: stretch.broken.map(|b| b.to_string()),
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
