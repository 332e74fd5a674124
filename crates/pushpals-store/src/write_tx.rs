//! What a write request may do inside the group-commit transaction.
//!
//! Over 400 lines: every write the store makes lives in one transaction type, so each change and
//! its event commit together.

use crate::PushSubscription;
use crate::error::{StoreError, StoreResult};
use crate::rows::{APPROVAL_COLUMNS, TASK_COLUMNS, approval_from_row, task_from_row};
use crate::sql::{Db, params};
use pushpals_core::chain::{StoredRow, canonical_payload, spliced_hash};
use pushpals_core::payload::{
    ApprovalDecided, ApprovalRequested, GrantChanged, PushSubscribed, PushUnsubscribed,
    StateChanged, TaskCreated,
};
use pushpals_core::timestamp::now;
use pushpals_core::{
    Actor, AgentWork, Approval, ApprovalAction, ApprovalId, ApprovalState, Decision, Event,
    GrantKind, NewEvent, Task, TaskId, TaskState, Usage,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The end of the chain: the next id and the last hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The id the next event gets.
    pub next_id: i64,
    /// The hash of the last event, or the genesis hash.
    pub hash: String,
}

/// Fields of a task to change along with a transition; `None` leaves a field
/// as it is.
#[derive(Debug, Clone, Default)]
pub struct TaskUpdate {
    /// The base commit.
    pub base_commit: Option<String>,
    /// The worktree path; `Some(None)` clears it.
    pub worktree_path: Option<Option<String>>,
    /// The reason for a failure, interruption or rejection.
    pub reason: Option<String>,
    /// The commit made on approval.
    pub commit_sha: Option<String>,
    /// A new command line (a continued task).
    pub command: Option<String>,
    /// Clears the reason (a continued task starts afresh).
    pub clear_reason: bool,
}

/// A write request's view of the open transaction.
pub struct WriteTx<'a> {
    pub(crate) tx: &'a dyn Db,
    head: &'a mut ChainHead,
    appended: Vec<Event>,
}

/// A new task's row: [`WriteTx::insert_task`].
#[derive(Debug, Clone)]
pub struct TaskRow<'a> {
    /// Its id.
    pub id: &'a TaskId,
    /// The repository it works in.
    pub repo: &'a str,
    /// What to do, in a line.
    pub title: &'a str,
    /// A command task's command line.
    pub command: Option<&'a str>,
    /// An agent task's brief.
    pub agent: Option<&'a AgentWork>,
    /// What its commands will see (null: not said).
    pub sandbox: serde_json::Value,
}

impl<'a> WriteTx<'a> {
    pub(crate) fn new(tx: &'a dyn Db, head: &'a mut ChainHead) -> Self {
        Self {
            tx,
            head,
            appended: Vec::new(),
        }
    }

    pub(crate) fn into_appended(self) -> Vec<Event> {
        self.appended
    }

    /// Appends an event to the chain.
    pub fn append(&mut self, new_event: NewEvent) -> StoreResult<Event> {
        let id = self.head.next_id;
        let time = now();
        let actor = new_event.actor.to_string();
        let task_id = new_event.task_id.as_ref().map(|t| t.as_str().to_owned());
        let kind = new_event.kind.as_str();
        // The payload is kept in its canonical text, and the hash is taken
        // over the row's bytes as stored: verifying reads and hashes them
        // without parsing JSON (see `ChainVerifier::check`).
        let payload_text = canonical_payload(&new_event.payload);
        let hash = spliced_hash(
            &self.head.hash,
            &StoredRow {
                id,
                task_id: task_id.as_deref(),
                time: &time,
                actor: &actor,
                kind,
                payload_text: &payload_text,
                prev_hash: &self.head.hash,
                hash: "",
            },
        );
        self.tx.execute(
            "INSERT INTO events (id, task_id, time, actor, kind, payload, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &params![
                id,
                task_id.as_deref(),
                time.as_str(),
                actor.as_str(),
                kind,
                payload_text,
                self.head.hash.as_str(),
                hash.as_str()
            ],
        )?;
        let event = Event {
            id,
            task_id,
            time,
            actor,
            kind: kind.to_owned(),
            payload: new_event.payload,
            prev_hash: std::mem::replace(&mut self.head.hash, hash.clone()),
            hash,
        };
        self.head.next_id += 1;
        self.appended.push(event.clone());
        Ok(event)
    }

    /// Rewrites the readiness row: proves the database takes a write.
    pub fn touch_readiness(&mut self) -> StoreResult<()> {
        self.tx.execute(
            "INSERT INTO readiness (id, checked_at) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            &params![now()],
        )?;
        Ok(())
    }

    /// Stores a blob under its SHA-256 and returns the hash; storing the same
    /// content twice keeps one copy.
    pub fn put_blob(&mut self, content: &[u8]) -> StoreResult<String> {
        let hash = hex::encode(Sha256::digest(content));
        self.tx.execute(
            "INSERT INTO blobs (hash, size, content) VALUES (?1, ?2, ?3) \
             ON CONFLICT (hash) DO NOTHING",
            &params![hash.as_str(), content.len(), content],
        )?;
        Ok(hash)
    }

    /// Creates a queued task and its `task_created` event.
    pub fn insert_task(&mut self, row: TaskRow<'_>, actor: Actor) -> StoreResult<Task> {
        let TaskRow {
            id,
            repo,
            title,
            command,
            agent,
            sandbox,
        } = row;
        if self.repository(repo)?.is_none() {
            return Err(StoreError::RepositoryNotFound(repo.to_owned()));
        }
        let at = now();
        let brief = agent.map(serde_json::to_string).transpose()?;
        self.tx.execute(
            "INSERT INTO tasks (id, seq, title, command, state, branch, created_at, updated_at, \
                                agent, repo) \
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks), ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
            &params![
                id.as_str(),
                title,
                command,
                TaskState::Queued.as_str(),
                id.branch(),
                at,
                brief,
                repo
            ],
        )?;
        let created = TaskCreated {
            title: title.to_owned(),
            repo: Some(repo.to_owned()),
            command: command.map(str::to_owned),
            agent: serde_json::to_value(agent)?,
            branch: id.branch(),
            trace_id: Some(id.trace_id()),
            sandbox,
        };
        self.append(NewEvent::typed(Some(id), actor, &created)?)?;
        self.task(id)
    }

    /// Adds a model call's usage to the task's sums.
    pub fn add_usage(&mut self, id: &TaskId, usage: Usage) -> StoreResult<()> {
        let as_sql = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let changed = self.tx.execute(
            "UPDATE tasks SET model_calls = model_calls + ?2, input_tokens = input_tokens + ?3, \
               output_tokens = output_tokens + ?4, cost_micros = cost_micros + ?5 \
             WHERE id = ?1",
            &params![
                id.as_str(),
                as_sql(usage.model_calls),
                as_sql(usage.input_tokens),
                as_sql(usage.output_tokens),
                as_sql(usage.cost_micros)
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::TaskNotFound(id.clone()));
        }
        Ok(())
    }

    /// Reads a task inside the transaction.
    pub fn task(&self, id: &TaskId) -> StoreResult<Task> {
        let row = self
            .tx
            .query_opt(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
                &params![id.as_str()],
            )?
            .ok_or_else(|| StoreError::TaskNotFound(id.clone()))?;
        task_from_row(&row)
    }

    /// Moves a task to `to` if the state machine allows it, applies
    /// `update`, and appends a `state_changed` event carrying `detail`.
    pub fn transition(
        &mut self,
        id: &TaskId,
        to: TaskState,
        update: TaskUpdate,
        actor: Actor,
        detail: Value,
    ) -> StoreResult<Task> {
        let task = self.task(id)?;
        task.state.transition(to)?;
        self.update_fields(id, Some(to), update.clone())?;
        self.append(NewEvent::typed(
            Some(id),
            actor,
            &StateChanged {
                from: task.state,
                to,
                reason: update.reason,
                detail,
            },
        )?)?;
        self.task(id)
    }

    /// Changes a task's fields without changing its state.
    pub fn update_task(&mut self, id: &TaskId, update: TaskUpdate) -> StoreResult<Task> {
        self.task(id)?;
        self.update_fields(id, None, update)?;
        self.task(id)
    }

    fn update_fields(
        &mut self,
        id: &TaskId,
        state: Option<TaskState>,
        update: TaskUpdate,
    ) -> StoreResult<()> {
        let (set_worktree, worktree) = match update.worktree_path {
            Some(value) => (true, value),
            None => (false, None),
        };
        self.tx.execute(
            "UPDATE tasks SET \
               state = COALESCE(?2, state), \
               base_commit = COALESCE(?3, base_commit), \
               worktree_path = CASE WHEN ?4 THEN ?5 ELSE worktree_path END, \
               reason = CASE WHEN ?9 THEN NULL ELSE COALESCE(?6, reason) END, \
               command = COALESCE(?10, command), \
               commit_sha = COALESCE(?7, commit_sha), \
               updated_at = ?8 \
             WHERE id = ?1",
            &params![
                id.as_str(),
                state.map(TaskState::as_str),
                update.base_commit,
                set_worktree,
                worktree,
                update.reason,
                update.commit_sha,
                now(),
                update.clear_reason,
                update.command
            ],
        )?;
        Ok(())
    }

    /// Asks for an approval and appends `approval_requested`.
    pub fn request_approval(
        &mut self,
        task_id: &TaskId,
        action: ApprovalAction,
        summary: &str,
        detail: Value,
    ) -> StoreResult<Approval> {
        let id = self
            .tx
            .query_one(
                "INSERT INTO approvals (task_id, action, state, summary, requested_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                &params![
                    task_id.as_str(),
                    action.as_str(),
                    ApprovalState::Pending.as_str(),
                    summary,
                    now()
                ],
            )?
            .get::<i64>(0)?;
        self.append(NewEvent::typed(
            Some(task_id),
            Actor::Orchestrator,
            &ApprovalRequested {
                approval_id: id,
                action,
                summary: summary.to_owned(),
                detail,
                again_after: None,
            },
        )?)?;
        self.approval(id)
    }

    /// Reads an approval inside the transaction.
    pub fn approval(&self, id: ApprovalId) -> StoreResult<Approval> {
        let row = self
            .tx
            .query_opt(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                &params![id],
            )?
            .ok_or(StoreError::ApprovalNotFound(id))?;
        approval_from_row(&row)
    }

    /// Records the person's decision on a pending approval and appends
    /// `approval_decided`. Deciding twice is [`StoreError::AlreadyDecided`].
    pub fn decide_approval(
        &mut self,
        id: ApprovalId,
        decision: Decision,
        decided_by: &str,
        reason: Option<&str>,
    ) -> StoreResult<Approval> {
        self.close_approval(id, decision.resulting_state(), decided_by, reason)
    }

    /// Puts an approved approval back to pending after what it allowed
    /// could not be done (a push that conflicted, a commit a stop cut
    /// short), and announces it
    /// again with its `detail` and why, so the person can retry. The
    /// decision was recorded before acting; this is its recorded undoing.
    pub fn reopen_approval(
        &mut self,
        id: ApprovalId,
        detail: Value,
        why: &str,
    ) -> StoreResult<Approval> {
        let approval = self.approval(id)?;
        if approval.state != ApprovalState::Approved {
            return Err(StoreError::AlreadyDecided {
                id,
                state: approval.state.as_str().to_owned(),
            });
        }
        self.tx.execute(
            "UPDATE approvals SET state = ?2, decided_at = NULL, decided_by = NULL, reason = NULL \
             WHERE id = ?1",
            &params![id, ApprovalState::Pending.as_str()],
        )?;
        self.append(NewEvent::typed(
            Some(&approval.task_id),
            Actor::Orchestrator,
            &ApprovalRequested {
                approval_id: id,
                action: approval.action,
                summary: approval.summary.clone(),
                detail,
                again_after: Some(why.to_owned()),
            },
        )?)?;
        self.approval(id)
    }

    /// Withdraws a pending approval (its task was cancelled).
    pub fn withdraw_approval(
        &mut self,
        id: ApprovalId,
        by: &str,
        reason: Option<&str>,
    ) -> StoreResult<Approval> {
        self.close_approval(id, ApprovalState::Withdrawn, by, reason)
    }

    fn close_approval(
        &mut self,
        id: ApprovalId,
        state: ApprovalState,
        by: &str,
        reason: Option<&str>,
    ) -> StoreResult<Approval> {
        let approval = self.approval(id)?;
        if approval.state != ApprovalState::Pending {
            return Err(StoreError::AlreadyDecided {
                id,
                state: approval.state.as_str().to_owned(),
            });
        }
        self.tx.execute(
            "UPDATE approvals SET state = ?2, decided_at = ?3, decided_by = ?4, reason = ?5 \
             WHERE id = ?1",
            &params![id, state.as_str(), now(), by, reason],
        )?;
        self.append(NewEvent::typed(
            Some(&approval.task_id),
            Actor::User(by.to_owned()),
            &ApprovalDecided {
                approval_id: id,
                action: approval.action,
                decision: state,
                decided_by: by.to_owned(),
                reason: reason.map(str::to_owned),
            },
        )?)?;
        self.approval(id)
    }

    /// The pending approvals of a task.
    pub fn pending_approvals(&self, task_id: &TaskId) -> StoreResult<Vec<Approval>> {
        self.tx
            .query(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals \
                     WHERE task_id = ?1 AND state = 'pending' ORDER BY id"
                ),
                &params![task_id.as_str()],
            )?
            .iter()
            .map(approval_from_row)
            .collect()
    }

    /// Gives (or, with `granted` false, takes back) an autonomy grant in
    /// one repository and records who did.
    pub fn set_grant(
        &mut self,
        repo: &str,
        kind: GrantKind,
        granted: bool,
        by: &str,
    ) -> StoreResult<()> {
        if self.repository(repo)?.is_none() {
            return Err(StoreError::RepositoryNotFound(repo.to_owned()));
        }
        if granted {
            self.tx.execute(
                "INSERT INTO grants (repo, kind, granted_by, granted_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (repo, kind) DO UPDATE SET \
                 granted_by = excluded.granted_by, granted_at = excluded.granted_at",
                &params![repo, kind.as_str(), by, now()],
            )?;
        } else {
            self.tx.execute(
                "DELETE FROM grants WHERE repo = ?1 AND kind = ?2",
                &params![repo, kind.as_str()],
            )?;
        }
        let changed = GrantChanged {
            grant: kind,
            granted,
            repo: Some(repo.to_owned()),
        };
        self.append(NewEvent::typed(None, Actor::User(by.to_owned()), &changed)?)?;
        Ok(())
    }

    /// Stores an API token's hash.
    pub fn insert_token(&mut self, name: &str, token_hash: &str, scopes: &str) -> StoreResult<i64> {
        self.tx
            .query_one(
                "INSERT INTO tokens (name, token_hash, scopes, created_at) \
                 VALUES (?1, ?2, ?3, ?4) RETURNING id",
                &params![name, token_hash, scopes, now()],
            )?
            .get(0)
    }

    /// Adds a browser's push subscription, or renews it (same endpoint).
    pub fn save_push_subscription(&mut self, sub: &PushSubscription) -> StoreResult<()> {
        self.tx.execute(
            "INSERT INTO push_subscriptions (token_name, endpoint, p256dh, auth, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (endpoint) DO UPDATE SET \
             token_name = excluded.token_name, p256dh = excluded.p256dh, auth = excluded.auth",
            &params![
                sub.token_name.as_str(),
                sub.endpoint.as_str(),
                sub.p256dh.as_str(),
                sub.auth.as_str(),
                now()
            ],
        )?;
        // The endpoint is a capability URL: the log names its service only.
        let subscribed = PushSubscribed {
            token_name: sub.token_name.clone(),
            push_service: push_service(&sub.endpoint),
        };
        self.append(NewEvent::typed(
            None,
            Actor::User(sub.token_name.clone()),
            &subscribed,
        )?)?;
        Ok(())
    }

    /// Drops a push subscription; false when there was none.
    pub fn delete_push_subscription(&mut self, endpoint: &str) -> StoreResult<bool> {
        self.drop_push_subscription(endpoint, None)
    }

    /// Removes a subscription the push service said is gone (`status`, 404
    /// or 410); the event says so, with the orchestrator as its actor.
    pub fn drop_gone_push_subscription(
        &mut self,
        endpoint: &str,
        status: u16,
    ) -> StoreResult<bool> {
        self.drop_push_subscription(endpoint, Some(status))
    }

    fn drop_push_subscription(&mut self, endpoint: &str, gone: Option<u16>) -> StoreResult<bool> {
        let token_name: Option<String> = self
            .tx
            .query_opt(
                "SELECT token_name FROM push_subscriptions WHERE endpoint = ?1",
                &params![endpoint],
            )?
            .map(|row| row.get(0))
            .transpose()?;
        let Some(token_name) = token_name else {
            return Ok(false);
        };
        self.tx.execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ?1",
            &params![endpoint],
        )?;
        let mut unsubscribed = PushUnsubscribed {
            token_name: token_name.clone(),
            push_service: push_service(endpoint),
            reason: None,
        };
        let actor = match gone {
            Some(status) => {
                unsubscribed.reason = Some(format!(
                    "the push service answered {status}: the browser's subscription is gone"
                ));
                Actor::Orchestrator
            }
            None => Actor::User(token_name),
        };
        self.append(NewEvent::typed(None, actor, &unsubscribed)?)?;
        Ok(true)
    }

    /// Revokes a token by id; false when there is no such live token.
    pub fn revoke_token(&mut self, id: i64) -> StoreResult<bool> {
        let changed = self.tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            &params![id, now()],
        )?;
        // The device's chat goes with it, unless another live token has its
        // name: a device paired later under that name starts afresh.
        self.tx.execute(
            "DELETE FROM chat_lines WHERE device = (SELECT name FROM tokens WHERE id = ?1) \
             AND NOT EXISTS (SELECT 1 FROM tokens WHERE revoked_at IS NULL \
                 AND name = (SELECT name FROM tokens WHERE id = ?1))",
            &params![id],
        )?;
        Ok(changed == 1)
    }

    /// Stores a pairing code's hash, valid until `expires_at` (unix
    /// seconds) and for one use.
    pub fn insert_pairing_code(
        &mut self,
        code_hash: &str,
        scopes: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.tx.execute(
            "INSERT INTO pairing_codes (code_hash, scopes, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
            &params![code_hash, scopes, now(), expires_at],
        )?;
        Ok(())
    }

    /// Uses a pairing code: its scopes when it exists, is unused and has
    /// not expired at `now_secs`; it can never be used again either way.
    pub fn redeem_pairing_code(
        &mut self,
        code_hash: &str,
        now_secs: i64,
    ) -> StoreResult<Option<String>> {
        self.tx
            .query_opt(
                "UPDATE pairing_codes SET used_at = ?3 \
                 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING scopes",
                &params![code_hash, now_secs, now()],
            )?
            .map(|row| row.get(0))
            .transpose()
    }
}

/// The push service of a subscription endpoint: its scheme and host, never
/// the path (which addresses the browser).
pub fn push_service(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", endpoint));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}")
}
