//! Autonomy grants: what the person lets happen without being asked.
//! Grants never bypass failing checks (the task fails before any approval)
//! or the secret gate (a blocked commit stays waiting for the person).
//! Giving and taking them back is here; the lifecycle applies the
//! auto-commit grant (`lifecycle/commit.rs`), delivery the auto-push and
//! auto-pr grants (`delivery/grants.rs`).

use crate::error::OrchestratorResult;
use crate::orchestrator::Orchestrator;
use pushpals_core::{GrantKind, TaskId};
use pushpals_store::GrantRecord;

impl Orchestrator {
    /// Gives or takes back a grant in one repository (the only one when
    /// `repo` is `None`); recorded with who did it. Returns that
    /// repository's name and its grants.
    pub async fn set_grant(
        &self,
        repo: Option<&str>,
        kind: GrantKind,
        granted: bool,
        by: &str,
    ) -> OrchestratorResult<(String, Vec<GrantRecord>)> {
        let repo = self.resolve_repo(repo)?.name().to_owned();
        let (by, name) = (by.to_owned(), repo.clone());
        self.store
            .write(move |tx| tx.set_grant(&name, kind, granted, &by))
            .await?;
        let grants = self.store.grants(&repo).await?;
        Ok((repo, grants))
    }
}

/// A grant of `kind` in force in the task's repository.
pub(crate) async fn grant_in_force(
    store: &pushpals_store::Store,
    task_id: &TaskId,
    kind: GrantKind,
) -> OrchestratorResult<Option<GrantRecord>> {
    let task = store.task(task_id).await?;
    Ok(store
        .grants(&task.repo)
        .await?
        .into_iter()
        .find(|g| g.kind == kind))
}
