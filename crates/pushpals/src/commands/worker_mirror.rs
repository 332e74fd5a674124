//! A mirrored run on a worker host (an agent's): before each command the
//! clone is brought to the server's files, after it what the command
//! changed goes back, both named by their git tree.

use super::worker_sending::{Sent, send_until_taken};
use crate::client::Client;
use anyhow::{Context, Result, bail};
use base64::Engine;
use pushpals_core::worker_wire::Mirror;
use reqwest::Method;
use std::path::Path;

/// Applies what changed on the server to the clone; the clone must then
/// hold the server's tree, or the command does not run.
pub(super) async fn bring_to(dir: &Path, mirror: &Mirror) -> Result<()> {
    if let Some(diff) = &mirror.diff {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(diff)
            .context("the server's changes are not base64")?;
        pushpals_workspace::apply_to_clone(dir, &bytes)
            .await
            .context("the server's changes do not apply to this clone")?;
    }
    let tree = pushpals_workspace::clone_tree(dir)
        .await
        .context("cannot read the clone")?;
    if tree != mirror.tree {
        bail!(
            "this clone holds tree {tree}, not the server's {}: it no longer matches the task's \
             files",
            mirror.tree
        );
    }
    Ok(())
}

/// After a command: when it changed the clone, sends the diff from the
/// tree it started at and returns the clone's tree now (for the report).
/// `Err` says why the changes could not go (the run is then dropped or
/// the command reported failed).
pub(super) async fn send_changes(
    client: &Client,
    dir: &Path,
    task: &str,
    lease: u64,
    seq: u64,
    started_at: &str,
) -> Result<Option<String>, Gone> {
    let tree = pushpals_workspace::clone_tree(dir)
        .await
        .map_err(|e| Gone::Failed(format!("cannot read the clone after the command: {e}")))?;
    if tree == started_at {
        return Ok(None);
    }
    let diff = pushpals_workspace::clone_tree_diff(dir, started_at, &tree)
        .await
        .map_err(|e| Gone::Failed(format!("cannot diff what the command changed: {e}")))?;
    let path = format!("/workers/tasks/{task}/diff?lease={lease}&seq={seq}");
    match send_until_taken(client, Method::PUT, &path, diff).await {
        Ok(Sent::Taken(_)) => Ok(Some(tree)),
        Ok(Sent::Gone(why)) => Err(Gone::RunGone(why)),
        Err(error) => Err(Gone::Failed(format!(
            "cannot send what the command changed: {error:#}"
        ))),
    }
}

/// Why a command's changes did not go to the server.
pub(super) enum Gone {
    /// The run is no longer this worker's.
    RunGone(String),
    /// They could not be made or sent; the command is reported failed.
    Failed(String),
}
