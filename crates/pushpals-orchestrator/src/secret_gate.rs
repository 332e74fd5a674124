//! The secret gate: findings in a task's diff block its commit until they
//! are changed or marked false positives (audited).

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::payload::SecretOverride;
use pushpals_core::{Actor, NewEvent, Task, TaskId};
use pushpals_workspace::{Repo, SECRET_ALLOWLIST_PATH, SecretAllowlist, SecretFinding};

/// The repository's own allowlist of secret findings at `rev`
/// (`.pushpals/secrets-allow.toml`, committed and reviewed like code);
/// empty when there is none. One that cannot be read allows nothing,
/// and the second value says why.
pub(crate) async fn secret_allowlist_at(
    repo: &Repo,
    rev: &str,
) -> (SecretAllowlist, Option<String>) {
    let text = match repo.file_at(rev, SECRET_ALLOWLIST_PATH).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => return (SecretAllowlist::default(), None),
        Err(error) => {
            return (
                SecretAllowlist::default(),
                Some(format!("cannot read {SECRET_ALLOWLIST_PATH}: {error}")),
            );
        }
    };
    match SecretAllowlist::from_toml(&text) {
        Ok(list) => (list, None),
        Err(error) => {
            tracing::warn!(%error, "the repository's secret allowlist is ignored");
            (
                SecretAllowlist::default(),
                Some(format!("{error}; it allows nothing until it is fixed")),
            )
        }
    }
}

impl Orchestrator {
    /// The findings in a diff against `base` that the repository's
    /// allowlist at `base` does not allow.
    pub(crate) async fn unallowed(
        &self,
        repo: &Repo,
        base: &str,
        findings: Vec<SecretFinding>,
    ) -> Vec<SecretFinding> {
        if findings.is_empty() {
            return findings;
        }
        let (allowlist, _) = secret_allowlist_at(repo, base).await;
        findings
            .into_iter()
            .filter(|f| !allowlist.allows(f))
            .collect()
    }

    /// The secret findings of a task's current diff that nobody marked a
    /// false positive.
    pub async fn open_secret_findings(
        &self,
        task: &Task,
    ) -> OrchestratorResult<Vec<SecretFinding>> {
        if task.base_commit.is_none() {
            return Ok(Vec::new());
        }
        let findings = self.diff(&task.id).await?.secret_findings;
        if findings.is_empty() {
            return Ok(findings);
        }
        let overridden = self.overridden_fingerprints(&task.id).await?;
        Ok(findings
            .into_iter()
            .filter(|f| !overridden.contains(&f.fingerprint))
            .collect())
    }

    /// Every event of a task, oldest first.
    pub(crate) async fn task_events(
        &self,
        task_id: &TaskId,
    ) -> OrchestratorResult<Vec<pushpals_core::Event>> {
        Ok(self.store.task_events(task_id).await?)
    }

    async fn overridden_fingerprints(&self, task_id: &TaskId) -> OrchestratorResult<Vec<String>> {
        let events = self.task_events(task_id).await?;
        Ok(events
            .iter()
            .filter_map(|e| e.read::<SecretOverride>())
            .map(|marked| marked.fingerprint)
            .collect())
    }

    /// Marks a secret finding of a task's diff a false positive, with the
    /// person's reason; recorded in the audit log. The finding must be in
    /// the current diff.
    pub async fn mark_false_positive(
        &self,
        task_id: &TaskId,
        fingerprint: &str,
        by: &str,
        reason: &str,
    ) -> OrchestratorResult<SecretFinding> {
        if reason.trim().is_empty() {
            return Err(OrchestratorError::InvalidInput(
                "say why this is not a secret: a reason is required".into(),
            ));
        }
        let task = self.store.task(task_id).await?;
        let findings = self.diff(task_id).await?.secret_findings;
        let finding = findings
            .into_iter()
            .find(|f| f.fingerprint == fingerprint)
            .ok_or_else(|| {
                OrchestratorError::InvalidInput(format!(
                    "task {} has no secret finding {fingerprint} in its current diff",
                    task.id
                ))
            })?;
        let recorded = finding.clone();
        let id = task.id.clone();
        let actor = Actor::User(by.to_owned());
        let reason = reason.to_owned();
        self.store
            .write(move |tx| {
                let marked = SecretOverride {
                    fingerprint: recorded.fingerprint,
                    file: recorded.file,
                    line: recorded.line,
                    rule: recorded.rule,
                    masked: recorded.masked,
                    reason,
                };
                tx.append(NewEvent::typed(Some(&id), actor, &marked)?)
            })
            .await?;
        Ok(finding)
    }
}
