//! Nothing piles up: an ended task's worktree (and its agent's private
//! home) is removed on request, worktrees of tasks that ended long ago are
//! removed,
//! branches already merged into the base branch are pruned, warm caches
//! whose inputs changed are removed, and the space everything takes can be
//! shown. Events and blobs are never deleted.

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use crate::repositories::ServedRepo;
use pushpals_core::payload::{Collected, WorktreeRemoved};
use pushpals_core::{Actor, NewEvent, Task, TaskId, TaskState};
use pushpals_store::TaskUpdate;
use serde::Serialize;
use std::path::Path;

/// What a collection removed (or would remove, on a dry run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Whether this was only a look.
    pub dry_run: bool,
    /// Tasks whose worktrees were removed, with the bytes each held.
    pub worktrees: Vec<(TaskId, u64)>,
    /// Branches deleted because the base branch holds their commit.
    pub branches: Vec<String>,
    /// Warm caches whose inputs changed and that no task uses, with the
    /// bytes each held.
    pub caches: Vec<(String, u64)>,
    /// Bytes freed (worktrees and caches; branches hold no files of their
    /// own).
    pub bytes_freed: u64,
}

/// Where the space goes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpaceReport {
    /// The database file with its write-ahead log.
    pub database_bytes: u64,
    /// Stored blobs (command output, diffs), inside the database.
    pub blob_bytes: u64,
    /// All worktrees together.
    pub worktree_bytes: u64,
    /// Each task's worktree.
    pub tasks: Vec<(TaskId, u64)>,
    /// All warm caches together.
    pub cache_bytes: u64,
    /// Each warm cache by key, with whether it is the one new tasks get.
    pub caches: Vec<CacheSpace>,
}

/// One warm cache's space.
#[derive(Debug, Clone, Serialize)]
pub struct CacheSpace {
    /// The repository it is of.
    pub repo: String,
    /// Its key.
    pub key: String,
    /// Its bytes.
    pub bytes: u64,
    /// New tasks at `HEAD` get it.
    pub current: bool,
}

/// The bytes of the files under `path` (not following links; `.git`
/// pointer files count, the repository's objects do not live here).
pub(crate) fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|entry| size_of(&entry.path())).sum())
        .unwrap_or(0)
}

impl Orchestrator {
    /// A repository's part of a collection: its merged task branches and
    /// its warm caches no task uses.
    async fn collect_repo(
        &self,
        served: &ServedRepo,
        dry_run: bool,
        report: &mut GcReport,
    ) -> OrchestratorResult<()> {
        if self.settings().retention.prune_merged_branches
            && let Some(base) = self.delivery.base_branch_of(served).await?
        {
            for task in self.store.tasks(Some(vec![TaskState::Committed])).await? {
                let Some(sha) = task.commit_sha.as_deref() else {
                    continue;
                };
                if task.repo != served.name()
                    || task.worktree_path.is_some()
                    || served.repo.branch_commit(&task.branch).await?.is_none()
                    || !served.repo.is_merged(sha, &base).await?
                {
                    continue;
                }
                if !dry_run {
                    served.repo.delete_branch(&task.branch).await?;
                }
                report.branches.push(task.branch.clone());
            }
        }
        let keep = self.tasks.current_cache_key(served).await;
        let layered = served.repo.layered_dirs();
        report.caches.extend(
            served
                .caches
                .remove_unused(keep.as_deref(), &layered, dry_run),
        );
        Ok(())
    }

    /// Removes worktrees of tasks that ended more than `older_than_days`
    /// ago and prunes merged task branches; a task that is running,
    /// waiting or being continued is left alone.
    pub async fn gc(
        &self,
        older_than_days: u64,
        dry_run: bool,
        actor: Actor,
    ) -> OrchestratorResult<GcReport> {
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        let now = time::OffsetDateTime::now_utc();
        for task in self.store.tasks(None).await? {
            let Some(path) = task.worktree_path.clone() else {
                continue;
            };
            let ended_days = pushpals_core::timestamp::parse(&task.updated_at)
                .map(|at| (now - at).whole_days())
                .unwrap_or(0);
            if !task.state.is_final()
                || ended_days < i64::try_from(older_than_days).unwrap_or(i64::MAX)
            {
                continue;
            }
            let bytes = size_of(Path::new(&path));
            if !dry_run {
                // The task may have been continued meanwhile: then it wins.
                if self.remove_task(&task.id, actor.clone()).await.is_err() {
                    continue;
                }
            }
            report.bytes_freed += bytes;
            report.worktrees.push((task.id.clone(), bytes));
        }
        for served in self.repos.all() {
            self.collect_repo(&served, dry_run, &mut report).await?;
        }
        report.bytes_freed += report.caches.iter().map(|(_, bytes)| bytes).sum::<u64>();
        if !dry_run
            && (!report.worktrees.is_empty()
                || !report.branches.is_empty()
                || !report.caches.is_empty())
        {
            let collected = Collected {
                worktrees: report
                    .worktrees
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect(),
                branches: report.branches.clone(),
                caches: report.caches.iter().map(|(key, _)| key.clone()).collect(),
                bytes_freed: report.bytes_freed,
            };
            let event = NewEvent::typed(None, actor, &collected)?;
            self.store.write(move |tx| tx.append(event)).await?;
        }
        Ok(report)
    }

    /// The space the database, its blobs and each worktree take.
    pub async fn space(&self) -> OrchestratorResult<SpaceReport> {
        let database_bytes = self.store.database_bytes().await?;
        let blob_bytes = self.store.blob_bytes().await?;
        let mut tasks = Vec::new();
        for task in self.store.tasks(None).await? {
            if let Some(path) = &task.worktree_path {
                tasks.push((task.id.clone(), size_of(Path::new(path))));
            }
        }
        let mut caches: Vec<CacheSpace> = Vec::new();
        for served in self.repos.all() {
            let current = self.tasks.current_cache_key(&served).await;
            caches.extend(
                served
                    .caches
                    .sizes()
                    .into_iter()
                    .map(|(key, bytes)| CacheSpace {
                        current: current.as_deref() == Some(key.as_str()),
                        repo: served.name().to_owned(),
                        key,
                        bytes,
                    }),
            );
        }
        Ok(SpaceReport {
            database_bytes,
            blob_bytes,
            worktree_bytes: tasks.iter().map(|(_, b)| b).sum(),
            tasks,
            cache_bytes: caches.iter().map(|c| c.bytes).sum(),
            caches,
        })
    }
}

impl Orchestrator {
    /// Collects every six hours by `[retention]`, for as long as the
    /// orchestrator lives (nothing when `worktree_days` is 0).
    pub fn spawn_retention(self: &std::sync::Arc<Self>) {
        let days = self.settings().retention.worktree_days;
        if days == 0 {
            return;
        }
        let orchestrator = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(6 * 3600));
            loop {
                every.tick().await;
                let Some(orchestrator) = orchestrator.upgrade() else {
                    return;
                };
                if let Err(error) = orchestrator.gc(days, false, Actor::Orchestrator).await {
                    tracing::warn!(%error, "the scheduled clean-up failed");
                }
            }
        });
    }
}

impl Orchestrator {
    /// Removes an ended task's worktree, and its branch unless the task was
    /// committed (then the branch holds the result and stays).
    pub async fn remove_task(&self, task_id: &TaskId, actor: Actor) -> OrchestratorResult<Task> {
        let task = self.store.task(task_id).await?;
        if !task.state.is_final() {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "cancel it (or decide its approval) before removing it".into(),
            });
        }
        let served = self.served(&task.repo)?;
        let worktree = self.worktrees_dir.join(task.id.as_str());
        let keep_branch = task.state == TaskState::Committed;
        self.runner.release(&worktree).await;
        if keep_branch {
            served.repo.remove_worktree_only(&worktree).await?;
        } else {
            served.repo.remove_worktree(&worktree, &task.branch).await?;
        }
        // Its artifacts go with it (their digests stay in the events).
        let artifacts = crate::lifecycle::artifacts_dir(&self.worktrees_dir, &task.id);
        if let Err(error) = std::fs::remove_dir_all(&artifacts)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %artifacts.display(), "cannot remove a task's artifacts");
        }
        // An external agent's private home (its configuration and session
        // transcripts) goes with the worktree.
        let home = self
            .worktrees_dir
            .with_file_name("homes")
            .join(task.id.as_str());
        if let Err(error) = std::fs::remove_dir_all(&home)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            return Err(OrchestratorError::Internal(format!(
                "cannot remove the agent's home {}: {error}",
                home.display()
            )));
        }
        let id = task.id.clone();
        let task = self
            .store
            .write(move |tx| {
                let removed = WorktreeRemoved {
                    branch_deleted: !keep_branch,
                };
                tx.append(NewEvent::typed(Some(&id), actor, &removed)?)?;
                tx.update_task(
                    &id,
                    TaskUpdate {
                        worktree_path: Some(None),
                        ..TaskUpdate::default()
                    },
                )
            })
            .await?;
        Ok(task)
    }
}
