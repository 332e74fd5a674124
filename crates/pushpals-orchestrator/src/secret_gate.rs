//! The secret gate: findings in a task's diff block its commit until they
//! are changed or marked false positives (audited).

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use crate::repositories::ServedRepo;
use pushpals_core::payload::SecretOverride;
use pushpals_core::{Actor, NewEvent, Task, TaskId};
use pushpals_store::Store;
use pushpals_workspace::{
    Diff, Repo, SECRET_ALLOWLIST_PATH, SecretAllowlist, SecretFinding, SecretScanner,
};
use std::path::Path;

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

/// Refuses `text` when it holds what looks like a secret; `what` names it
/// in the error.
pub(crate) fn refuse_secrets(
    scanner: &SecretScanner,
    text: &str,
    what: &str,
) -> OrchestratorResult<()> {
    if let std::borrow::Cow::Owned(redacted) = scanner.redact(text) {
        return Err(OrchestratorError::InvalidInput(format!(
            "{what} holds what looks like a secret ({}); nothing was stored. \
             Keep secrets out of tasks: put them in a file the command reads, \
             outside the repository",
            redacted
                .split("[REDACTED:")
                .skip(1)
                .filter_map(|rest| rest.split(']').next())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// The findings in a diff against `base` that the repository's allowlist
/// at `base` does not allow.
pub(crate) async fn unallowed(
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

/// A task's diff against its base, not yet redacted: from its worktree
/// while it has one, else from its branch. Returns the base with it.
pub(crate) async fn raw_diff(
    served: &ServedRepo,
    task: &Task,
) -> OrchestratorResult<(String, Diff)> {
    let Some(base_commit) = task.base_commit.clone() else {
        return Err(OrchestratorError::WrongState {
            task_id: task.id.clone(),
            state: task.state,
            what: "it has no worktree yet, so there is no diff".into(),
        });
    };
    let diff = match &task.worktree_path {
        Some(path) if Path::new(path).exists() => {
            served
                .repo
                .worktree(Path::new(path), &base_commit)
                .diff()
                .await?
        }
        _ => {
            if served.repo.branch_commit(&task.branch).await?.is_none() {
                return Err(OrchestratorError::WrongState {
                    task_id: task.id.clone(),
                    state: task.state,
                    what: "its worktree and branch were removed, so there is no diff any more"
                        .into(),
                });
            }
            served.repo.branch_diff(&task.branch, &base_commit).await?
        }
    };
    Ok((base_commit, diff))
}

/// The possible secrets in a task's diff that its repository's allowlist
/// does not allow (masked).
pub(crate) async fn diff_findings(
    served: &ServedRepo,
    scanner: &SecretScanner,
    task: &Task,
) -> OrchestratorResult<Vec<SecretFinding>> {
    let (base, diff) = raw_diff(served, task).await?;
    Ok(unallowed(&served.repo, &base, scanner.scan_diff(&diff.text)).await)
}

/// The secret findings of a task's current diff that nobody marked a
/// false positive: while there are any, its commit is blocked.
pub(crate) async fn open_findings(
    store: &Store,
    served: &ServedRepo,
    scanner: &SecretScanner,
    task: &Task,
) -> OrchestratorResult<Vec<SecretFinding>> {
    if task.base_commit.is_none() {
        return Ok(Vec::new());
    }
    let findings = diff_findings(served, scanner, task).await?;
    if findings.is_empty() {
        return Ok(findings);
    }
    let overridden: Vec<String> = store
        .task_events(&task.id)
        .await?
        .iter()
        .filter_map(|e| e.read::<SecretOverride>())
        .map(|marked| marked.fingerprint)
        .collect();
    Ok(findings
        .into_iter()
        .filter(|f| !overridden.contains(&f.fingerprint))
        .collect())
}

impl Orchestrator {
    /// Every event of a task, oldest first.
    pub(crate) async fn task_events(
        &self,
        task_id: &TaskId,
    ) -> OrchestratorResult<Vec<pushpals_core::Event>> {
        Ok(self.store.task_events(task_id).await?)
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
        let served = self.repos.served(&task.repo)?;
        let findings = diff_findings(&served, &self.scanner(), &task).await?;
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
