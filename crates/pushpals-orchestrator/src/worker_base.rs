//! A worker's request for the base of a run it holds: a git bundle of the
//! task's worktree `HEAD` without what the bases the worker names already
//! bring (nothing when it holds the base), made in the data directory and
//! read whole.

use crate::dispatch::DispatchError;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::TaskId;

/// The most commits a worker may name as held.
const MOST_HAVES: usize = 32;

impl Orchestrator {
    /// The bundle of the base of `task`'s run, for worker `name` holding it
    /// under `lease`, thin against the commits in `haves`; `None` when the
    /// worker holds the base already.
    pub async fn worker_base_bundle(
        &self,
        name: &str,
        task: &str,
        lease: u64,
        haves: &[String],
    ) -> OrchestratorResult<Result<Option<Vec<u8>>, DispatchError>> {
        if haves.len() > MOST_HAVES {
            return Err(OrchestratorError::InvalidInput(format!(
                "name at most {MOST_HAVES} commits in `have`, not {}",
                haves.len()
            )));
        }
        if let Some(odd) = haves.iter().find(|h| !pushpals_workspace::is_commit_id(h)) {
            return Err(OrchestratorError::InvalidInput(format!(
                "`have` holds {odd:?}, which is not a full commit id (40 or 64 hex digits)"
            )));
        }
        let worktree = match self.dispatch.base_worktree(name, task, lease) {
            Ok(worktree) => worktree,
            Err(refused) => return Ok(Err(refused)),
        };
        let id = TaskId::parse(task)
            .map_err(|e| OrchestratorError::InvalidInput(format!("{task:?}: {e}")))?;
        let record = self.store.task(&id).await?;
        let served = self.repos.served(&record.repo)?;
        let scratch = self.data_dir.join("worker-bases");
        tokio::fs::create_dir_all(&scratch).await.map_err(|e| {
            OrchestratorError::Internal(format!("cannot make {}: {e}", scratch.display()))
        })?;
        // One file per request (a worker may ask twice at once).
        let bundle = scratch.join(format!(
            "{task}-{lease}-{}.bundle",
            crate::orchestrator::new_task_id()?
        ));
        let made = served
            .repo
            .bundle_head_since(&worktree, &bundle, haves)
            .await;
        let read = match made {
            Ok(true) => tokio::fs::read(&bundle)
                .await
                .map(Some)
                .map_err(|e| e.to_string()),
            Ok(false) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        let _ = tokio::fs::remove_file(&bundle).await;
        read.map(Ok)
            .map_err(|e| OrchestratorError::Internal(format!("cannot bundle the base: {e}")))
    }
}
