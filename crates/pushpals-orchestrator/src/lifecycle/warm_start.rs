//! A task starts warm: the repository's warm cache for the base commit's
//! inputs is copied into its new worktree, after being built when none
//! matches: the base commit exported, the setup step run (see
//! `setup_run`), the checks run once to warm the build, the outputs
//! digested and recorded.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use super::lock_changes::lock_files_at;
use super::setup_run::setup_step;
use super::setup_run::{BuildCommand, BuildTree};
use crate::checks::{Check, RepoConfig, repo_config_at};
use crate::repositories::ServedRepo;
use crate::setup_config::{Reach, SetupStep};
use crate::warm_cache::{CacheEntry, CacheInputs, Manifest, copy_into, digest, untracked_entries};
use pushpals_core::payload::{CacheBuilt, CacheUsed, WarmCheck};
use pushpals_core::{Actor, NewEvent, Task, TaskId};
use pushpals_policy::{Decision, Policy};
use pushpals_sandbox::Allowlist;
use std::path::Path;
use std::time::Instant;
use tokio::sync::watch;

impl Lifecycle {
    /// The inputs of the warm cache at `base`, with its setup step;
    /// `None` when the repository has neither a setup nor checks.
    pub(crate) async fn cache_inputs(
        &self,
        served: &ServedRepo,
        base: &str,
        config: &RepoConfig,
    ) -> StepResult<Option<(CacheInputs, Option<SetupStep>)>> {
        let lock_files = lock_files_at(&served.repo, base).await?;
        let setup = setup_step(&served.repo, base, config, &lock_files).await?;
        let checks = config.checks();
        if setup.is_none() && checks.is_empty() {
            return Ok(None);
        }
        let inputs = CacheInputs {
            setup: setup.as_ref().map(|s| s.command.clone()),
            reach: setup
                .as_ref()
                .map(|s| s.reach.iter().map(reach_name).collect())
                .unwrap_or_default(),
            checks: checks.iter().map(|c| c.command_line.clone()).collect(),
            lock_files,
            toolchains: served.caches.toolchains(),
        };
        Ok(Some((inputs, setup)))
    }

    /// The key of the cache a task starting at the repository's `HEAD`
    /// would use (what a clean-up keeps).
    pub(crate) async fn current_cache_key(&self, served: &ServedRepo) -> Option<String> {
        let head = served.repo.head_commit().await.ok()?;
        let config = repo_config_at(&served.repo, &head).await.ok()?;
        let (inputs, _) = self.cache_inputs(served, &head, &config).await.ok()??;
        Some(inputs.key())
    }

    /// Gives a task's new worktree the warm cache of its base commit's
    /// inputs, building it first when there is none.
    pub(crate) async fn warm_start(
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
        let key = inputs.key();
        // Held while building and copying: a clean-up leaves it alone, and
        // a second task needing it waits for the first to build it.
        let _in_use = served.caches.hold(&key).await;
        let entry = match served.caches.entry(&key) {
            Some(entry) => entry,
            None => {
                self.build_cache(
                    policy,
                    task,
                    setup.as_ref(),
                    &config.checks(),
                    inputs,
                    cancel,
                )
                .await?
            }
        };
        let worktree = task.worktree_path.clone().unwrap_or_default();
        let worktree = Path::new(&worktree);
        let started = Instant::now();
        // Under an overlay worktree the outputs become its lowest layer
        // (shared, copy-on-write); a checkout gets a copy.
        let layered = served
            .repo
            .layer_under(worktree, &entry.outputs)
            .map_err(|e| Stop::Failed(format!("cannot put the warm cache under the task: {e}")))?;
        let method = if layered {
            "overlay"
        } else {
            copy_into(&entry.outputs, &entry.manifest.entries, worktree)
                .await
                .map_err(|e| {
                    Stop::Failed(format!(
                        "cannot copy the warm cache into the task's worktree: {e}; `pushpals gc` frees space"
                    ))
                })?;
            served.caches.copy_method().as_str()
        };
        // What the cache brought is the setup's, not the task's change: it
        // stays out of the task's diff and commit (a virtual environment the
        // repository does not ignore would otherwise be committed).
        served
            .repo
            .exclude_from_changes(worktree, &entry.manifest.entries)
            .map_err(|e| {
                Stop::Failed(format!(
                    "cannot leave the warm cache out of the task's changes: {e}"
                ))
            })?;
        let used = CacheUsed {
            key: key.clone(),
            built_at_commit: entry.manifest.base_commit.clone(),
            entries: entry.manifest.entries.len() as u64,
            files: entry.manifest.files,
            bytes: entry.manifest.bytes,
            method: method.to_owned(),
            lock_files: super::lock_changes::lock_files_in(worktree)
                .into_iter()
                .collect(),
            took_ms: started.elapsed().as_millis() as u64,
        };
        let event = NewEvent::typed(Some(&task.id), Actor::Orchestrator, &used)
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(())
    }

    /// Builds the cache for `inputs` at the task's base commit.
    async fn build_cache(
        &self,
        policy: &Policy,
        task: &Task,
        setup: Option<&SetupStep>,
        checks: &[Check],
        inputs: CacheInputs,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<CacheEntry> {
        let base = task.base_commit.clone().unwrap_or_default();
        let served = self.served(&task.repo)?;
        let key = inputs.key();
        let started = Instant::now();
        let build = served.caches.start_build(&key).map_err(|e| {
            Stop::Failed(format!(
                "cannot make a directory for the warm cache in {}: {e}",
                served.caches.root().display()
            ))
        })?;
        let tree = build.tree.clone();
        let result = async {
            served
                .repo
                .export_tree(&base, &tree)
                .await
                .map_err(|e| Stop::Failed(format!("cannot export the base commit: {e}")))?;
            if let Some(setup) = setup {
                self.run_setup(policy, &task.id, setup, BuildTree::Here(&tree), &[], cancel)
                    .await?;
            }
            let warm_checks = self
                .warm_up(policy, &task.id, checks, BuildTree::Here(&tree), cancel)
                .await?;
            let tracked = served
                .repo
                .files_at(&base)
                .await
                .map_err(|e| Stop::Failed(format!("cannot list the base commit: {e}")))?;
            let tree_for_digest = tree.clone();
            let (entries, digest) = tokio::task::spawn_blocking(move || {
                let entries = untracked_entries(&tree_for_digest, &tracked)?;
                let digest = digest(&tree_for_digest, &entries)?;
                Ok::<_, std::io::Error>((entries, digest))
            })
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?
            .map_err(|e| Stop::Failed(format!("cannot read what the setup made: {e}")))?;
            Ok::<_, Stop>((warm_checks, entries, digest))
        }
        .await;
        // Nothing more runs in the build tree: its resident sandbox goes
        // before the tree is sealed or discarded.
        self.runner.release(&tree).await;
        let (warm_checks, entries, digest) = match result {
            Ok(built) => built,
            Err(stop) => {
                served.caches.discard(build);
                return Err(stop);
            }
        };
        let manifest = Manifest {
            key: key.clone(),
            inputs: serde_json::to_value(&inputs).unwrap_or_default(),
            base_commit: base.clone(),
            entries,
            files: digest.files,
            bytes: digest.bytes,
            sha256: digest.sha256,
            warm_checks,
        };
        let built = CacheBuilt {
            key: key.clone(),
            base_commit: base.clone(),
            inputs: manifest.inputs.clone(),
            entries: manifest.entries.iter().take(50).cloned().collect(),
            files: manifest.files,
            bytes: manifest.bytes,
            sha256: manifest.sha256.clone(),
            warm_checks: manifest
                .warm_checks
                .iter()
                .map(|(check, passed)| WarmCheck {
                    check: check.clone(),
                    passed: *passed,
                })
                .collect(),
            took_ms: started.elapsed().as_millis() as u64,
        };
        let entry = served.caches.seal(build, manifest).map_err(|e| {
            Stop::Failed(format!(
                "cannot keep the warm cache: {e}; `pushpals gc` frees space"
            ))
        })?;
        let event = NewEvent::typed(Some(&task.id), Actor::Orchestrator, &built)
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(entry)
    }

    /// Runs each check policy allows in `tree` once, so its build outputs
    /// are warm; a check policy would ask about is left for the task.
    pub(super) async fn warm_up(
        &self,
        policy: &Policy,
        task_id: &TaskId,
        checks: &[Check],
        tree: BuildTree<'_>,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<Vec<(String, bool)>> {
        let mut results = Vec::new();
        for check in checks {
            let step = format!("warm:{}", check.name);
            let verdict = self
                .gate
                .judge_recorded(policy, task_id, &step, &check.command_line, false)
                .await?;
            if verdict.decision != Decision::Allow {
                continue;
            }
            let network = if verdict.network {
                Some(Allowlist::new(&self.settings().network.allow).map_err(Stop::Failed)?)
            } else {
                None
            };
            let command = BuildCommand {
                step: &step,
                line: &check.command_line,
                timeout: self.settings().check_timeout(),
                network,
                env: Vec::new(),
                cargo_home: None,
            };
            let recorded = self.run_in_tree(task_id, command, tree, cancel).await?;
            results.push((check.name.to_owned(), recorded.outcome.succeeded()));
        }
        Ok(results)
    }
}

/// A `network` entry as recorded among the inputs.
fn reach_name(reach: &Reach) -> String {
    match reach {
        Reach::Registry(registry) => registry.name().to_owned(),
        Reach::Host(pattern) => pattern.clone(),
    }
}
