//! A worker host fetching a run's base: into its own cache of the
//! repository's history (a bare repository per served repository, see
//! `pushpals_workspace::cached_bases`), naming the bases it holds so the
//! server sends only what is new, then cloning the run from the cache.

use super::worker_sending::{Sent, send_until_taken};
use crate::client::Client;
use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use std::path::{Path, PathBuf};

/// Fetches the run's base into this host's cache of the repository (only
/// what the bases it holds do not bring) and clones it into `runs/<task>`.
/// A cache that fails is removed and the base fetched whole.
pub(super) async fn start_run(client: &Client, runs: &Path, run: &Starting<'_>) -> Result<PathBuf> {
    let Starting { task, lease, .. } = *run;
    if pushpals_core::TaskId::parse(task).is_err() {
        bail!("the server named a task {task:?} that is not a task id");
    }
    let dir = runs.join(task);
    let cache = runs.with_file_name("bases").join(format!(
        "{}.git",
        pushpals_orchestrator::worker_host::repo_dir_name(run.repo)
    ));
    match start_from_cache(client, runs, &cache, run, &dir).await {
        Ok(()) => return Ok(dir),
        Err(error) if error.downcast_ref::<RunGone>().is_some() => return Err(error),
        Err(error) => {
            say!(
                "Task {task}: the cache of {} failed ({error:#}); fetching the base whole.",
                run.repo
            );
            let _ = std::fs::remove_dir_all(&cache);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let path = format!("/workers/tasks/{task}/base?lease={lease}");
    let file = runs.join(format!("{task}.bundle"));
    match fetch_bundle(client, &path, &file).await? {
        true => {}
        false => bail!("the server sent no base"),
    }
    let cloned = pushpals_workspace::clone_bundle(&file, &dir, run.base).await;
    let _ = tokio::fs::remove_file(&file).await;
    cloned.context("cannot clone the base")?;
    Ok(dir)
}

/// A run being started.
pub(super) struct Starting<'a> {
    pub(super) task: &'a str,
    pub(super) lease: u64,
    pub(super) repo: &'a str,
    pub(super) base: &'a str,
}

/// The run went to another worker or ended while it was fetched.
#[derive(Debug)]
struct RunGone(String);

impl std::fmt::Display for RunGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunGone {}

async fn start_from_cache(
    client: &Client,
    runs: &Path,
    cache: &Path,
    run: &Starting<'_>,
    dir: &Path,
) -> Result<()> {
    let (task, lease) = (run.task, run.lease);
    let haves = pushpals_workspace::cached_bases(cache).await;
    let mut path = format!("/workers/tasks/{task}/base?lease={lease}");
    if !haves.is_empty() {
        path.push_str("&have=");
        path.push_str(&haves.join(","));
    }
    let file = runs.join(format!("{task}.bundle"));
    if fetch_bundle(client, &path, &file).await? {
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let taken = pushpals_workspace::cache_bundle(cache, &file, run.base).await;
        let _ = tokio::fs::remove_file(&file).await;
        taken.context("cannot take the base into the cache")?;
        say!(
            "Task {task}: took {size} bytes of history ({} bases held before).",
            haves.len()
        );
    } else {
        say!("Task {task}: its base was here already.");
    }
    pushpals_workspace::clone_cached(cache, dir, run.base)
        .await
        .context("cannot clone the base from the cache")
}

/// Fetches a base bundle into `file`; false when the server answered that
/// this host holds the base (204).
async fn fetch_bundle(client: &Client, path: &str, file: &Path) -> Result<bool> {
    let response = match send_until_taken(client, Method::GET, path, Vec::new()).await? {
        Sent::Taken(response) => response,
        Sent::Gone(why) => return Err(RunGone(why).into()),
    };
    if response.status() == StatusCode::NO_CONTENT {
        return Ok(false);
    }
    let bundle = response.bytes().await.context("the bundle broke off")?;
    tokio::fs::write(file, &bundle)
        .await
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(true)
}
