//! The scanner's findings: recorded per scan by fingerprint, so a rescan
//! updates a finding instead of adding it again, a finding that is gone is
//! marked fixed, and a dismissed one stays dismissed.

use crate::error::StoreResult;
use crate::sql::{Db, params};
use crate::write_tx::WriteTx;
use pushpals_core::timestamp::now;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which findings to list; each `None` means any.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    /// Only this repository's.
    pub repo: Option<String>,
    /// Only of this detector.
    pub kind: Option<String>,
    /// Only in this state.
    pub state: Option<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The repository it was found in (set when read; ignored when
    /// recorded, which names the repository itself).
    #[serde(default)]
    pub repo: String,
    /// Stable across scans: kind, place and what was found, hashed.
    pub fingerprint: String,
    /// Which detector found it (`secret`, `ci_config`, `todo_hotspot`, ...).
    pub kind: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
    /// What is wrong, in a line.
    pub title: String,
    /// Where, when it is a file.
    pub file: Option<String>,
    /// The line, when known.
    pub line: Option<u64>,
    /// Why it is believed: command, excerpt, commit, counts.
    pub evidence: Value,
    /// `open`, `fixed` or `dismissed`.
    pub state: String,
    /// When a scan first saw it.
    pub first_seen: String,
    /// When a scan last saw it.
    pub last_seen: String,
    /// Why it was dismissed.
    pub reason: Option<String>,
}

/// What a scan changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanChanges {
    /// Findings seen for the first time (or again after being fixed).
    pub new: usize,
    /// Findings still there.
    pub still_open: usize,
    /// Open findings of the scanned kinds that are gone.
    pub fixed: usize,
}

impl WriteTx<'_> {
    /// Records one scan's findings for the detectors in `kinds`. With
    /// `scope`, the scan looked only at those files: open findings
    /// elsewhere are left as they are.
    pub fn record_findings(
        &mut self,
        repo: &str,
        kinds: &[String],
        scope: Option<&[String]>,
        found: &[Finding],
    ) -> StoreResult<ScanChanges> {
        let at = now();
        let mut changes = ScanChanges::default();
        for finding in found {
            let previous: Option<String> = self
                .tx
                .query_opt(
                    "SELECT state FROM findings WHERE repo = ?1 AND fingerprint = ?2",
                    &params![repo, finding.fingerprint.as_str()],
                )?
                .map(|row| row.get(0))
                .transpose()?;
            let evidence = serde_json::to_string(&finding.evidence)?;
            match previous.as_deref() {
                None => {
                    self.tx.execute(
                        "INSERT INTO findings (fingerprint, kind, severity, title, file, line, \
                           evidence, state, first_seen, last_seen, repo) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?8, ?9)",
                        &params![
                            finding.fingerprint.as_str(),
                            finding.kind.as_str(),
                            finding.severity.as_str(),
                            finding.title.as_str(),
                            finding.file.as_deref(),
                            finding.line,
                            evidence.as_str(),
                            at.as_str(),
                            repo
                        ],
                    )?;
                    changes.new += 1;
                }
                Some(state) => {
                    let reopened = state == "fixed";
                    self.tx.execute(
                        "UPDATE findings SET severity = ?2, title = ?3, file = ?4, line = ?5, \
                           evidence = ?6, last_seen = ?7, \
                           state = CASE WHEN state = 'dismissed' THEN state ELSE 'open' END \
                         WHERE fingerprint = ?1 AND repo = ?8",
                        &params![
                            finding.fingerprint.as_str(),
                            finding.severity.as_str(),
                            finding.title.as_str(),
                            finding.file.as_deref(),
                            finding.line,
                            evidence.as_str(),
                            at.as_str(),
                            repo
                        ],
                    )?;
                    if reopened {
                        changes.new += 1;
                    } else if state == "open" {
                        changes.still_open += 1;
                    }
                }
            }
        }
        let seen: Vec<&str> = found.iter().map(|f| f.fingerprint.as_str()).collect();
        for kind in kinds {
            let open: Vec<(String, Option<String>)> = self
                .tx
                .query(
                    "SELECT fingerprint, file FROM findings \
                     WHERE repo = ?1 AND kind = ?2 AND state = 'open'",
                    &params![repo, kind.as_str()],
                )?
                .iter()
                .map(|row| Ok((row.get(0)?, row.get(1)?)))
                .collect::<StoreResult<_>>()?;
            let in_scope = |file: &Option<String>| match (scope, file) {
                (None, _) => true,
                (Some(files), Some(file)) => files.contains(file),
                (Some(_), None) => false,
            };
            for (fingerprint, _) in open
                .iter()
                .filter(|(f, file)| !seen.contains(&f.as_str()) && in_scope(file))
            {
                self.tx.execute(
                    "UPDATE findings SET state = 'fixed', last_seen = ?2 \
                     WHERE fingerprint = ?1 AND repo = ?3",
                    &params![fingerprint.as_str(), at.as_str(), repo],
                )?;
                changes.fixed += 1;
            }
        }
        Ok(changes)
    }

    /// Records how long `subject` took at `commit`; returns the earlier
    /// samples (oldest first, at most `keep`), with the commit of each.
    pub fn record_duration(
        &mut self,
        repo: &str,
        subject: &str,
        commit: &str,
        seconds: f64,
        keep: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let mut earlier: Vec<(String, f64)> = self
            .tx
            .query(
                "SELECT commit_sha, seconds FROM durations WHERE repo = ?1 AND subject = ?2 \
                 ORDER BY id DESC LIMIT ?3",
                &params![repo, subject, keep],
            )?
            .iter()
            .map(|row| Ok((row.get(0)?, row.get(1)?)))
            .collect::<StoreResult<_>>()?;
        earlier.reverse();
        self.tx.execute(
            "INSERT INTO durations (subject, commit_sha, seconds, at, repo) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &params![subject, commit, seconds, now(), repo],
        )?;
        Ok(earlier)
    }

    /// Records a test's outcomes in one scan at `commit`; returns its
    /// totals before this scan: (passed, failed) at the same commit, and
    /// (passed, failed) over every scan.
    pub fn record_test_result(
        &mut self,
        repo: &str,
        test: &str,
        commit: &str,
        passed: u32,
        failed: u32,
    ) -> StoreResult<((u64, u64), (u64, u64))> {
        let totals = |sql: &str, args: &[crate::sql::Value]| -> StoreResult<(u64, u64)> {
            let row = self.tx.query_one(sql, args)?;
            let (p, f): (i64, i64) = (row.get(0)?, row.get(1)?);
            Ok((p.max(0) as u64, f.max(0) as u64))
        };
        let same = totals(
            "SELECT CAST(COALESCE(SUM(passed), 0) AS BIGINT), \
               CAST(COALESCE(SUM(failed), 0) AS BIGINT) FROM test_results \
             WHERE repo = ?3 AND test = ?1 AND commit_sha = ?2",
            &params![test, commit, repo],
        )?;
        let all = totals(
            "SELECT CAST(COALESCE(SUM(passed), 0) AS BIGINT), \
               CAST(COALESCE(SUM(failed), 0) AS BIGINT) FROM test_results \
             WHERE repo = ?2 AND test = ?1",
            &params![test, repo],
        )?;
        self.tx.execute(
            "INSERT INTO test_results (test, commit_sha, passed, failed, at, repo) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &params![test, commit, passed, failed, now(), repo],
        )?;
        Ok((same, all))
    }

    /// Dismisses a finding of `repo` with a reason; false when there is
    /// none.
    pub fn dismiss_finding(
        &mut self,
        repo: &str,
        fingerprint: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        let changed = self.tx.execute(
            "UPDATE findings SET state = 'dismissed', reason = ?2 \
             WHERE fingerprint = ?1 AND repo = ?3",
            &params![fingerprint, reason, repo],
        )?;
        Ok(changed == 1)
    }
}

/// Findings, optionally only of one repository, kind or state, most
/// severe first.
pub(crate) fn list(conn: &dyn Db, filter: &FindingFilter) -> StoreResult<Vec<Finding>> {
    let rows = conn.query(
        "SELECT fingerprint, kind, severity, title, file, line, evidence, state, first_seen, \
           last_seen, reason, repo FROM findings \
         WHERE (CAST(?1 AS TEXT) IS NULL OR kind = ?1) AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) \
           AND (CAST(?3 AS TEXT) IS NULL OR repo = ?3) \
         ORDER BY CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, kind, \
           file NULLS FIRST, line NULLS FIRST",
        &params![
            filter.kind.as_deref(),
            filter.state.as_deref(),
            filter.repo.as_deref()
        ],
    )?;
    rows.iter()
        .map(|row| {
            let evidence: String = row.get(6)?;
            let line: Option<i64> = row.get(5)?;
            Ok(Finding {
                fingerprint: row.get(0)?,
                kind: row.get(1)?,
                severity: row.get(2)?,
                title: row.get(3)?,
                file: row.get(4)?,
                line: line.and_then(|l| u64::try_from(l).ok()),
                evidence: serde_json::from_str(&evidence).unwrap_or(Value::Null),
                state: row.get(7)?,
                first_seen: row.get(8)?,
                last_seen: row.get(9)?,
                reason: row.get(10)?,
                repo: row.get(11)?,
            })
        })
        .collect()
}
