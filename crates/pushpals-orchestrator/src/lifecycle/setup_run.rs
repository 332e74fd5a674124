//! The setup step: asked for and run in the sandbox with network only to
//! the registries it names, at the base commit for a warm cache or again
//! in a task's worktree after the task changed a lock file (`lock_changes`);
//! and the commands a cache build runs, recorded as steps of the task.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use crate::checks::RepoConfig;
use crate::output::Recorded;
use crate::registries::CARGO_HOME_IN_TREE;
use crate::setup_config::{SetupStep, devcontainer_step};
use crate::warm_cache::stable_path;
use pushpals_core::{TaskId, TaskState};
use pushpals_policy::{Decision, Policy};
use pushpals_sandbox::{Allowlist, CommandSpec, WorktreeAlias};
use pushpals_workspace::Repo;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// Where a setup usually makes a virtual environment.
const VIRTUAL_ENV_BINS: [&str; 2] = [".venv/bin", "venv/bin"];

/// Where a cache build runs: a tree on this machine, or the build on the
/// task's worker host.
#[derive(Clone, Copy)]
pub(crate) enum BuildTree<'a> {
    /// This tree here.
    Here(&'a Path),
    /// The worker's build of the run's cache.
    OnWorker,
    /// The clone of a mirrored run on its worker (the task's worktree is
    /// mirrored there).
    WorkerClone,
}

/// One command of a cache build.
pub(crate) struct BuildCommand<'a> {
    pub step: &'a str,
    pub line: &'a str,
    pub timeout: Duration,
    pub network: Option<Allowlist>,
    pub env: Vec<(String, String)>,
    /// On a worker: make the setup's own cargo home first, with this
    /// config.
    pub cargo_home: Option<String>,
}

/// `tree` as it appears at `path` in the sandbox: its virtual
/// environment's programs after the system's on `PATH`, and `CARGO_HOME`
/// at the setup's own cargo home when it has one.
pub(crate) fn alias_at(path: std::path::PathBuf, tree: &Path, start_here: bool) -> WorktreeAlias {
    let path_dirs = VIRTUAL_ENV_BINS
        .iter()
        .filter(|dir| tree.join(dir).join("python").exists())
        .map(|dir| (*dir).to_owned())
        .collect();
    // A setup that reached cargo's registries left its own cargo home:
    // every command of the task uses it (its crates, its lock).
    let mut env = Vec::new();
    let cargo_home = tree.join(CARGO_HOME_IN_TREE);
    if std::fs::symlink_metadata(&cargo_home).is_ok_and(|meta| meta.is_dir()) {
        env.push((
            "CARGO_HOME".to_owned(),
            path.join(CARGO_HOME_IN_TREE).to_string_lossy().into_owned(),
        ));
    }
    WorktreeAlias {
        path,
        start_here,
        path_dirs,
        env,
    }
}

/// The setup step at `base`: `[setup]`, else a dev container's.
pub(crate) async fn setup_step(
    repo: &Repo,
    base: &str,
    config: &RepoConfig,
    lock_files: &[(String, String)],
) -> StepResult<Option<SetupStep>> {
    if let Some(step) = config.setup.step().map_err(Stop::Failed)? {
        return Ok(Some(step));
    }
    let devcontainer = repo
        .file_at(base, ".devcontainer/devcontainer.json")
        .await
        .map_err(|e| Stop::Failed(format!("cannot read the dev container's file: {e}")))?;
    match devcontainer {
        Some(bytes) => devcontainer_step(&bytes, |name| lock_files.iter().any(|(f, _)| f == name))
            .map_err(Stop::Failed),
        None => Ok(None),
    }
}

impl Lifecycle {
    /// Where the worktree also appears in the sandbox (checks start
    /// there), with its virtual environment's programs after the system's
    /// on `PATH`.
    pub(crate) fn worktree_alias(
        &self,
        repo_root: &Path,
        worktree: &Path,
        start_here: bool,
    ) -> Option<WorktreeAlias> {
        Some(alias_at(stable_path(repo_root), worktree, start_here))
    }

    /// Judges, asks for and runs the setup step in `tree`.
    /// `changed`: the lock files a task changed (then `tree` is its
    /// worktree and nothing is cached); empty for a cache build.
    pub(crate) async fn run_setup(
        &self,
        policy: &Policy,
        task_id: &TaskId,
        setup: &SetupStep,
        tree: BuildTree<'_>,
        changed: &[&str],
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let verdict = self
            .gate
            .judge_recorded(policy, task_id, "setup", &setup.command, false)
            .await?;
        if verdict.decision == Decision::Deny {
            return Err(Stop::Failed(format!(
                "policy denies the setup step `{}` ({}): {}",
                setup.command,
                setup.source.as_str(),
                verdict.reason()
            )));
        }
        let access = crate::registries::resolve(&setup.reach)
            .map_err(|e| Stop::Failed(format!("the setup step cannot start: {e}")))?;
        let reach = if access.hosts.is_empty() {
            "no network".to_owned()
        } else {
            format!("network to {}", access.hosts.join(", "))
        };
        let worker = match tree {
            BuildTree::Here(_) => None,
            BuildTree::OnWorker | BuildTree::WorkerClone => {
                self.remote.get(task_id).map(|run| run.worker().to_owned())
            }
        };
        let summary = match (changed.is_empty(), &worker) {
            (true, None) => format!(
                "Run the repository's setup `{}` (from {}) with {reach}? It runs once at the base commit and its result is given to every task until the setup, a lock file or a toolchain changes.",
                setup.command,
                setup.source.as_str()
            ),
            (true, Some(worker)) => format!(
                "Run the repository's setup `{}` (from {}) on worker {worker} with {reach}? It runs once at the base commit there and its result is given to every task that runs on {worker} until the setup, a lock file or a toolchain changes.",
                setup.command,
                setup.source.as_str()
            ),
            (false, _) => format!(
                "The task changed {}: run the repository's setup `{}` (from {}) again in its worktree{} with {reach}? Its result stays in this task.",
                changed.join(", "),
                setup.command,
                setup.source.as_str(),
                worker
                    .as_ref()
                    .map(|w| format!(" on worker {w}"))
                    .unwrap_or_default()
            ),
        };
        let detail = json!({
            "step": "setup",
            "command": setup.command,
            "source": setup.source.as_str(),
            "hosts": access.hosts,
            "changed": changed,
            "findings": verdict.findings,
        });
        self.gate
            .ask_for_command(
                task_id,
                "setup",
                &setup.command,
                summary,
                detail,
                TaskState::Running,
                cancel,
            )
            .await?;
        let network = if access.hosts.is_empty() {
            None
        } else {
            Some(Allowlist::new(&access.hosts).map_err(Stop::Failed)?)
        };
        let timeout = setup
            .timeout
            .map_or(self.settings().command_timeout(), |t| {
                t.min(self.settings().command_timeout())
            });
        let mut env = access.env;
        let mut cargo_home = None;
        if let Some(config) = &access.cargo_config {
            match tree {
                BuildTree::Here(tree) => {
                    prepare_cargo_home(tree, config).map_err(|e| {
                        Stop::Failed(format!("cannot prepare the setup's cargo home: {e}"))
                    })?;
                    let served = self.served_for(task_id).await?;
                    let home = stable_path(served.repo.root()).join(CARGO_HOME_IN_TREE);
                    env.push(("CARGO_HOME".to_owned(), home.to_string_lossy().into_owned()));
                }
                // The worker makes it in its tree, at its own path.
                BuildTree::OnWorker | BuildTree::WorkerClone => {
                    cargo_home = Some(config.clone());
                }
            }
        }
        let command = BuildCommand {
            step: "setup",
            line: &setup.command,
            timeout,
            network,
            env,
            cargo_home,
        };
        let recorded = self.run_in_tree(task_id, command, tree, cancel).await?;
        if !recorded.outcome.succeeded() {
            let kept = if changed.is_empty() {
                "nothing was cached"
            } else {
                "the task's worktree keeps what it made"
            };
            return Err(Stop::Failed(format!(
                "the setup step `{}` {}; {kept}, and its output is in the task's log:\n{}",
                setup.command,
                recorded.outcome.describe(),
                recorded.tail
            )));
        }
        Ok(())
    }

    /// Runs one command of a cache build in `tree`, at the repository's
    /// stable path, recorded as a step of the task.
    pub(crate) async fn run_in_tree(
        &self,
        task_id: &TaskId,
        command: BuildCommand<'_>,
        tree: BuildTree<'_>,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<Recorded> {
        let (tree, runner): (
            std::path::PathBuf,
            std::sync::Arc<dyn pushpals_sandbox::Runner>,
        ) = match tree {
            BuildTree::Here(tree) => (tree.to_path_buf(), std::sync::Arc::clone(&self.runner)),
            BuildTree::OnWorker => {
                let run = self.remote.get(task_id).ok_or_else(|| {
                    Stop::Failed("the task's run is no longer on a worker".into())
                })?;
                let runner = crate::dispatch::InBuild {
                    run,
                    cargo_home: command.cargo_home.clone(),
                };
                (self.worktree_path(task_id), std::sync::Arc::new(runner))
            }
            BuildTree::WorkerClone => {
                let run = self.remote.mirrored_run(task_id).ok_or_else(|| {
                    Stop::Failed("the task's run is no longer on a worker".into())
                })?;
                let runner: std::sync::Arc<dyn pushpals_sandbox::Runner> =
                    match command.cargo_home.clone() {
                        Some(config) => std::sync::Arc::new(run.with_cargo_home(config)),
                        None => run,
                    };
                (self.worktree_path(task_id), runner)
            }
        };
        // A worker's commands reach out only through this machine's proxy.
        let proxy = match command.network {
            Some(allowlist) if runner.backend() == "worker" || self.runner.isolated() => {
                Some(self.start_proxy_with(task_id, allowlist)?)
            }
            _ => None,
        };
        let mut env = vec![("PUSHPALS_TASK".to_owned(), task_id.to_string())];
        env.extend(command.env);
        let served = self.served_for(task_id).await?;
        let tree = tree.as_path();
        let spec = CommandSpec {
            command_line: command.line.to_owned(),
            cwd: tree.to_path_buf(),
            timeout: command.timeout,
            env,
            read_only_paths: Vec::new(),
            network_proxy: proxy.as_ref().map(|p| p.socket_path().to_path_buf()),
            gateway: None,
            home: None,
            session: None,
            alias: self.worktree_alias(served.repo.root(), tree, true),
        };
        self.run_spec_on(runner, task_id, command.step, spec, proxy, cancel)
            .await
    }
}

/// Makes the setup's own cargo home under `tree` and, when the person
/// configured registries, its `config.toml`. The tree is the repository's
/// or a task's: every part is made here, never followed through a link.
pub(crate) fn prepare_cargo_home(tree: &Path, config: &str) -> std::io::Result<()> {
    let mut dir = tree.to_path_buf();
    for part in Path::new(CARGO_HOME_IN_TREE).components() {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is in the way (not a directory)",
                    dir.display()
                )));
            }
            Err(_) => std::fs::create_dir(&dir)?,
        }
    }
    if config.is_empty() {
        return Ok(());
    }
    use std::io::Write;
    let path = dir.join("config.toml");
    let _ = std::fs::remove_file(&path);
    // Made new (O_EXCL): a link left in its place is never followed.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(config.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setups_cargo_home_is_made_in_the_tree_and_never_through_a_link() {
        let tree = tempfile::tempdir().unwrap();
        prepare_cargo_home(tree.path(), "[source.x]\nregistry = \"https://x\"\n").unwrap();
        let home = tree.path().join(CARGO_HOME_IN_TREE);
        assert!(
            std::fs::read_to_string(home.join("config.toml"))
                .unwrap()
                .contains("[source.x]")
        );
        // A link planted where the config goes is replaced, not followed.
        let outside = tempfile::tempdir().unwrap();
        std::fs::remove_file(home.join("config.toml")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), home.join("config.toml"))
            .unwrap();
        prepare_cargo_home(tree.path(), "x = 1\n").unwrap();
        assert!(!outside.path().join("victim").exists());
        // A link in the way of the directories is refused.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), other.path().join(".pushpals")).unwrap();
        let err = prepare_cargo_home(other.path(), "").unwrap_err();
        assert!(err.to_string().contains("in the way"), "{err}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }
}
