//! Mapping between rows and domain types.

use crate::error::{StoreError, StoreResult};
use crate::sql::Row;
use pushpals_core::{
    Approval, ApprovalAction, ApprovalState, Event, Task, TaskId, TaskState, Usage,
};

/// The columns [`task_from_row`] reads, in order.
pub const TASK_COLUMNS: &str = "id, title, command, state, base_commit, branch, worktree_path, \
     reason, commit_sha, created_at, updated_at, agent, model_calls, input_tokens, output_tokens, \
     cost_micros, seq, repo";

/// The columns [`approval_from_row`] reads, in order.
pub const APPROVAL_COLUMNS: &str =
    "id, task_id, action, state, summary, requested_at, decided_at, decided_by, reason";

/// The columns [`event_from_row`] reads, in order.
pub const EVENT_COLUMNS: &str = "id, task_id, time, actor, kind, payload, prev_hash, hash";

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

/// A counter column (stored as SQLite's signed integer).
fn count(row: &Row, index: usize) -> StoreResult<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| corrupt("tasks", format!("a negative count {value}")))
}

/// Reads a task row.
pub(crate) fn task_from_row(row: &Row) -> StoreResult<Task> {
    let id: String = row.get(0)?;
    let state: String = row.get(3)?;
    Ok(Task {
        id: TaskId::parse(&id).map_err(|e| corrupt("tasks", e.to_string()))?,
        title: row.get(1)?,
        command: row.get(2)?,
        state: TaskState::parse(&state)
            .ok_or_else(|| corrupt("tasks", format!("unknown state {state:?}")))?,
        base_commit: row.get(4)?,
        branch: row.get(5)?,
        worktree_path: row.get(6)?,
        reason: row.get(7)?,
        commit_sha: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        agent: match row.get::<Option<String>>(11)? {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| corrupt("tasks", format!("an agent brief: {e}")))?,
            ),
        },
        usage: Usage {
            model_calls: count(row, 12)?,
            input_tokens: count(row, 13)?,
            output_tokens: count(row, 14)?,
            cost_micros: count(row, 15)?,
        },
        seq: count(row, 16)?,
        repo: row.get(17)?,
    })
}

/// Reads an approval row.
pub(crate) fn approval_from_row(row: &Row) -> StoreResult<Approval> {
    let task_id: String = row.get(1)?;
    let action: String = row.get(2)?;
    let state: String = row.get(3)?;
    Ok(Approval {
        id: row.get(0)?,
        task_id: TaskId::parse(&task_id).map_err(|e| corrupt("approvals", e.to_string()))?,
        action: ApprovalAction::parse(&action)
            .ok_or_else(|| corrupt("approvals", format!("unknown action {action:?}")))?,
        state: ApprovalState::parse(&state)
            .ok_or_else(|| corrupt("approvals", format!("unknown state {state:?}")))?,
        summary: row.get(4)?,
        requested_at: row.get(5)?,
        decided_at: row.get(6)?,
        decided_by: row.get(7)?,
        reason: row.get(8)?,
    })
}

/// Reads an event row. A payload that is not JSON any more (a damaged log)
/// is returned as a JSON string holding the stored text, so reading never
/// fails where `audit verify` would report the damage.
pub(crate) fn event_from_row(row: &Row) -> StoreResult<Event> {
    let payload_text: String = row.get(5)?;
    let payload =
        serde_json::from_str(&payload_text).unwrap_or(serde_json::Value::String(payload_text));
    Ok(Event {
        id: row.get(0)?,
        task_id: row.get(1)?,
        time: row.get(2)?,
        actor: row.get(3)?,
        kind: row.get(4)?,
        payload,
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}
