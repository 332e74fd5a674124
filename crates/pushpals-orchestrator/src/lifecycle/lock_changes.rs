//! A task that changed a lock file or manifest: which it changed against
//! what it started with (the warm cache's lock files, else the base
//! commit's), and the setup run again in its worktree before its checks.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use super::setup_run::{BuildTree, setup_step};
use crate::checks::RepoConfig;
use crate::warm_cache::LOCK_FILES;
use pushpals_core::{EventKind, Task, TaskId};
use pushpals_policy::Policy;
use pushpals_workspace::Repo;
use std::path::Path;
use tokio::sync::watch;

/// The lock files at the top of `commit`, with their blob ids.
pub(crate) async fn lock_files_at(repo: &Repo, commit: &str) -> StepResult<Vec<(String, String)>> {
    repo.top_level_blobs(commit, LOCK_FILES)
        .await
        .map_err(|e| Stop::Failed(format!("cannot read the lock files: {e}")))
}

impl Lifecycle {
    /// A task that changed a lock file or manifest gets the setup run
    /// again in its own worktree (asked, since its inputs are the task's;
    /// never cached) before its checks. On a worker (whose changes came
    /// back command by command) the setup runs in the worker's clone.
    pub(crate) async fn setup_after_lock_changes(
        &self,
        policy: &Policy,
        task: &Task,
        config: &RepoConfig,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let tree = self.remote.get(&task.id).map(|_| BuildTree::WorkerClone);
        let base = task.base_commit.clone().unwrap_or_default();
        let worktree = std::path::PathBuf::from(task.worktree_path.clone().unwrap_or_default());
        let served = self.served(&task.repo)?;
        let at_base = lock_files_at(&served.repo, &base).await?;
        let Some(setup) = setup_step(&served.repo, &base, config, &at_base).await? else {
            return Ok(());
        };
        // What the task started with: the lock files as the warm cache
        // left them (a setup may make one, `package-lock.json`), else the
        // base commit's.
        let started = self.started_lock_files(&task.id).await?;
        let mut changed = Vec::new();
        for name in LOCK_FILES {
            let now = regular_file(&worktree.join(name)).map(|bytes| lock_digest(&bytes));
            let before = match &started {
                Some(started) => started.get(*name).cloned(),
                None if at_base.iter().any(|(file, _)| file == name) => served
                    .repo
                    .file_at(&base, name)
                    .await
                    .ok()
                    .flatten()
                    .map(|bytes| lock_digest(&bytes)),
                None => None,
            };
            if now != before {
                changed.push(*name);
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let tree = tree.unwrap_or(BuildTree::Here(&worktree));
        self.run_setup(policy, &task.id, &setup, tree, &changed, cancel)
            .await
    }
}

impl Lifecycle {
    /// The lock files' digests as the task's worktree had them when it
    /// first got the warm cache (its first `cache_used` event), if it got
    /// one: before anything of the task changed them. (A later run, a
    /// continued task's, gets the cache into a worktree or clone that holds
    /// the task's changes already, and a new clone on a worker has the
    /// cache as built, so the setup is wanted again there.)
    async fn started_lock_files(
        &self,
        task_id: &TaskId,
    ) -> StepResult<Option<std::collections::HashMap<String, String>>> {
        let events = self
            .task_events(task_id)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let used = events
            .iter()
            .find(|e| e.kind == EventKind::CacheUsed.as_str());
        Ok(used.and_then(|e| serde_json::from_value(e.payload["lock_files"].clone()).ok()))
    }
}

/// The lock files of a worktree, by name, with their digests.
pub(crate) fn lock_files_in(worktree: &Path) -> std::collections::HashMap<String, String> {
    LOCK_FILES
        .iter()
        .filter_map(|name| {
            regular_file(&worktree.join(name))
                .map(|bytes| ((*name).to_owned(), lock_digest(&bytes)))
        })
        .collect()
}

/// A lock file's SHA-256.
fn lock_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A regular file's content; `None` for anything else (a link the task
/// made is never followed by the orchestrator, a FIFO never read).
fn regular_file(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return meta.file_type().is_symlink().then(|| b"\0symlink".to_vec());
    }
    std::fs::read(path).ok()
}
