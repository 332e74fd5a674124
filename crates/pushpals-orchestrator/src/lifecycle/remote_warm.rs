//! A run on a worker host starts warm too: the worker keeps warm caches of
//! its own, under the same key as this machine's (the setup, checks, lock
//! files and toolchains) joined with its own toolchains. When it has none
//! for the run's key, it is built there the same way as here: the setup is
//! judged and asked for here, and run on the worker in a tree of the base
//! at the repository's stable path, with network only to its registries
//! through this machine's proxy; the checks warm it; the worker keeps what
//! they left and gives the run's clone a copy, left out of the task's
//! changes.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use super::setup_run::BuildTree;
use crate::checks::RepoConfig;
use crate::dispatch::RemoteRun;
use pushpals_core::payload::{CacheBuilt, CacheUsed, WarmCheck};
use pushpals_core::worker_wire::WarmReport;
use pushpals_core::{Actor, NewEvent, Task};
use pushpals_policy::Policy;
use std::time::Instant;
use tokio::sync::watch;

impl Lifecycle {
    /// Gives the run's clone on its worker the warm cache of the base's
    /// inputs, building it there first when the worker has none.
    pub(super) async fn warm_start_on_worker(
        &self,
        policy: &Policy,
        task: &Task,
        config: &RepoConfig,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let base = task.base_commit.clone().unwrap_or_default();
        let served = self.served(&task.repo)?;
        let Some((inputs, setup)) = self.cache_inputs(&served, &base, config).await? else {
            return Ok(());
        };
        let Some(run) = self.remote.get(&task.id) else {
            return Ok(());
        };
        let key = inputs.key();
        let started = Instant::now();
        let mut asking = cancel.clone();
        let had = run
            .warm(&key, &mut asking)
            .await
            .map_err(|why| worker_stop(&run, why, cancel))?;
        let report = if had.used {
            had
        } else {
            if let Some(setup) = &setup {
                self.run_setup(policy, &task.id, setup, BuildTree::OnWorker, &[], cancel)
                    .await?;
            }
            let warm_checks = self
                .warm_up(
                    policy,
                    &task.id,
                    &config.checks(),
                    BuildTree::OnWorker,
                    cancel,
                )
                .await?;
            let sealed = run
                .seal(&key, &mut asking)
                .await
                .map_err(|why| worker_stop(&run, why, cancel))?;
            let built = CacheBuilt {
                key: key.clone(),
                base_commit: base.clone(),
                inputs: serde_json::to_value(&inputs).unwrap_or_default(),
                entries: sealed.entries.iter().take(50).cloned().collect(),
                files: sealed.files,
                bytes: sealed.bytes,
                sha256: sealed.sha256.clone(),
                warm_checks: warm_checks
                    .into_iter()
                    .map(|(check, passed)| WarmCheck { check, passed })
                    .collect(),
                took_ms: started.elapsed().as_millis() as u64,
            };
            self.record(task, &built).await?;
            sealed
        };
        let mut used = used_event(&report, &run, started);
        let worktree = task.worktree_path.clone().unwrap_or_default();
        used.lock_files = super::lock_changes::lock_files_in(std::path::Path::new(&worktree))
            .into_iter()
            .collect();
        self.record(task, &used).await
    }

    async fn record<P: pushpals_core::payload::EventPayload>(
        &self,
        task: &Task,
        payload: &P,
    ) -> StepResult<()> {
        let event = NewEvent::typed(Some(&task.id), Actor::Orchestrator, payload)
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(())
    }
}

/// The run's clone got the worker's cache.
fn used_event(report: &WarmReport, run: &RemoteRun, started: Instant) -> CacheUsed {
    CacheUsed {
        key: report.key.clone(),
        built_at_commit: report.built_at.clone(),
        entries: report.entries.len() as u64,
        files: report.files,
        bytes: report.bytes,
        method: format!("worker {}", run.worker()),
        lock_files: std::collections::BTreeMap::new(),
        took_ms: started.elapsed().as_millis() as u64,
    }
}

/// Why the driver stops when the worker could not answer about its cache.
fn worker_stop(run: &RemoteRun, why: String, cancel: &watch::Receiver<bool>) -> Stop {
    if *cancel.borrow() {
        return Stop::Superseded;
    }
    match run.lost() {
        Some(lost) => Stop::Lost(lost),
        None => Stop::Failed(format!("the warm cache on worker {}: {why}", run.worker())),
    }
}
