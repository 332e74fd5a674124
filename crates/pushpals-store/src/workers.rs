//! Worker hosts: named by an admin with the labels they offer, enrolled
//! once with a one-time token (only its hash is kept), then known by a
//! token of the `worker` scope, which can be revoked. What a worker runs is
//! recorded as the tasks' events; this is who the workers are.

use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::sql::{Db, Row, params};
use crate::write_tx::WriteTx;
use pushpals_core::payload::{WorkerAdded, WorkerEnrolled, WorkerRevoked};
use pushpals_core::timestamp::now;
use pushpals_core::{Actor, NewEvent};
use serde::Serialize;

/// A worker host as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerRecord {
    /// Its name.
    pub name: String,
    /// What it offers (`cargo`, `node`, ...).
    pub labels: Vec<String>,
    /// Who named it, and when.
    pub added_by: String,
    /// When it was named.
    pub added_at: String,
    /// When it enrolled (`None`: its enrolment token is unused).
    pub enrolled_at: Option<String>,
    /// Its cores, as it last said.
    pub cores: Option<u32>,
    /// Its Push Pals version, as it last said.
    pub version: Option<String>,
    /// When it last reported.
    pub last_seen: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

const COLUMNS: &str =
    "name, labels, added_by, added_at, enrolled_at, cores, version, last_seen, revoked_at";

fn from_row(row: &Row) -> StoreResult<WorkerRecord> {
    let labels: String = row.get(1)?;
    let cores: Option<i64> = row.get(5)?;
    Ok(WorkerRecord {
        name: row.get(0)?,
        labels: serde_json::from_str(&labels).map_err(|e| StoreError::Corrupt {
            table: "workers",
            detail: format!("labels: {e}"),
        })?,
        added_by: row.get(2)?,
        added_at: row.get(3)?,
        enrolled_at: row.get(4)?,
        cores: cores.and_then(|c| u32::try_from(c).ok()),
        version: row.get(6)?,
        last_seen: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

fn worker(conn: &dyn Db, name: &str) -> StoreResult<Option<WorkerRecord>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM workers WHERE name = ?1"),
        &params![name],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// A new worker: its name, labels and the hash of its enrolment token.
#[derive(Debug, Clone)]
pub struct NewWorker<'a> {
    /// Its name.
    pub name: &'a str,
    /// What it offers.
    pub labels: &'a [String],
    /// The SHA-256 of its one-time enrolment token.
    pub enrol_hash: &'a str,
    /// When the enrolment token expires (Unix seconds).
    pub expires_at: i64,
}

/// What a worker says of itself when it enrols or reports.
#[derive(Debug, Clone)]
pub struct WorkerReport<'a> {
    /// Its cores.
    pub cores: u32,
    /// Its Push Pals version.
    pub version: &'a str,
}

impl WriteTx<'_> {
    /// Names a worker and keeps its enrolment token's hash. A name in use
    /// by a worker that was not revoked is [`StoreError::Duplicate`]; a
    /// revoked one's name is taken over.
    pub fn add_worker(&mut self, new: &NewWorker<'_>, by: Actor) -> StoreResult<WorkerRecord> {
        if let Some(existing) = worker(self.tx, new.name)? {
            if existing.revoked_at.is_none() {
                return Err(StoreError::Duplicate(format!(
                    "a worker named {:?} is already there (`pushpals workers --revoke {}` first)",
                    existing.name, existing.name
                )));
            }
            self.tx
                .execute("DELETE FROM workers WHERE name = ?1", &params![new.name])?;
        }
        self.tx.execute(
            "INSERT INTO workers (name, labels, enrol_hash, enrol_expires, added_by, added_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &params![
                new.name,
                serde_json::to_string(new.labels)?,
                new.enrol_hash,
                new.expires_at,
                by.to_string(),
                now()
            ],
        )?;
        self.append(NewEvent::typed(
            None,
            by,
            &WorkerAdded {
                name: new.name.to_owned(),
                labels: new.labels.to_vec(),
                expires_at: new.expires_at,
            },
        )?)?;
        worker(self.tx, new.name)?.ok_or_else(|| StoreError::Writer("the worker vanished".into()))
    }

    /// Trades an enrolment token (by its hash) for a worker token (by its
    /// hash, scope `worker`, named `worker:NAME`): `None`, and nothing
    /// written, when the token is unknown, used, expired at `now_secs` or
    /// revoked. A token works once: the first trade clears it.
    pub fn enrol_worker(
        &mut self,
        enrol_hash: &str,
        now_secs: i64,
        token_hash: &str,
        report: &WorkerReport<'_>,
    ) -> StoreResult<Option<(WorkerRecord, i64)>> {
        let at = now();
        let Some(row) = self.tx.query_opt(
            "UPDATE workers SET enrol_hash = NULL, enrolled_at = ?3, last_seen = ?3, cores = ?4, \
               version = ?5 \
             WHERE enrol_hash = ?1 AND enrol_expires > ?2 AND revoked_at IS NULL RETURNING name",
            &params![
                enrol_hash,
                now_secs,
                at.as_str(),
                report.cores,
                report.version
            ],
        )?
        else {
            return Ok(None);
        };
        let name: String = row.get(0)?;
        let token_id = self.insert_token(&format!("worker:{name}"), token_hash, "worker")?;
        self.tx.execute(
            "UPDATE workers SET token_id = ?2 WHERE name = ?1",
            &params![name.as_str(), token_id],
        )?;
        self.append(NewEvent::typed(
            None,
            Actor::User(format!("worker:{name}")),
            &WorkerEnrolled {
                name: name.clone(),
                token_id,
                cores: report.cores,
                version: report.version.to_owned(),
            },
        )?)?;
        Ok(worker(self.tx, &name)?.map(|record| (record, token_id)))
    }

    /// Notes that a worker reported (its cores and version); false when no
    /// enrolled, unrevoked worker has that name.
    pub fn worker_seen(&mut self, name: &str, report: &WorkerReport<'_>) -> StoreResult<bool> {
        let changed = self.tx.execute(
            "UPDATE workers SET last_seen = ?2, cores = ?3, version = ?4 \
             WHERE name = ?1 AND enrolled_at IS NOT NULL AND revoked_at IS NULL",
            &params![name, now(), report.cores, report.version],
        )?;
        Ok(changed == 1)
    }

    /// Revokes a worker: its token stops working at once, and an unused
    /// enrolment token with it. False when there is no such live worker.
    pub fn revoke_worker(&mut self, name: &str, by: Actor) -> StoreResult<bool> {
        let at = now();
        let changed = self.tx.execute(
            "UPDATE workers SET revoked_at = ?2, enrol_hash = NULL \
             WHERE name = ?1 AND revoked_at IS NULL",
            &params![name, at.as_str()],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        self.tx.execute(
            "UPDATE tokens SET revoked_at = ?2 \
             WHERE id = (SELECT token_id FROM workers WHERE name = ?1) AND revoked_at IS NULL",
            &params![name, at.as_str()],
        )?;
        self.append(NewEvent::typed(
            None,
            by,
            &WorkerRevoked {
                name: name.to_owned(),
            },
        )?)?;
        Ok(true)
    }
}

impl Store {
    /// Every worker, by name (revoked ones too).
    pub async fn workers(&self) -> StoreResult<Vec<WorkerRecord>> {
        self.read(|conn| {
            conn.query(
                &format!("SELECT {COLUMNS} FROM workers ORDER BY name"),
                &params![],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
        .await
    }
}
