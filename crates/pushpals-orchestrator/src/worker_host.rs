//! What a worker host needs to work the way this machine does: for its
//! warm caches, what a setup left in a tree, its digest, the copy into a
//! run's clone, the sandbox path the tree appears at, the setup's own
//! cargo home and the toolchains a cache was made with; and the taking of
//! a run's artifacts from its clone.

use crate::lifecycle::setup_run;
use crate::warm_cache;
use pushpals_sandbox::WorktreeAlias;
use std::path::{Path, PathBuf};

/// What a setup left in a tree besides the commit's `tracked` files, with
/// their count, size and digest.
pub struct Outputs {
    /// The top-most untracked paths, sorted.
    pub entries: Vec<String>,
    /// How many files.
    pub files: u64,
    /// How many bytes.
    pub bytes: u64,
    /// Their SHA-256 (paths, kinds, modes, contents and link targets).
    pub sha256: String,
}

/// Reads what a setup left in `tree` (blocking: run it off the async
/// threads).
pub fn outputs(tree: &Path, tracked: &[String]) -> std::io::Result<Outputs> {
    let entries = warm_cache::untracked_entries(tree, tracked)?;
    let digest = warm_cache::digest(tree, &entries)?;
    Ok(Outputs {
        entries,
        files: digest.files,
        bytes: digest.bytes,
        sha256: digest.sha256,
    })
}

/// Copies `entries` of `tree` into `clone`, keeping modes, times and links.
pub async fn copy_outputs(tree: &Path, entries: &[String], clone: &Path) -> Result<(), String> {
    warm_cache::copy_into(tree, entries, clone).await
}

/// A repository's name as a directory name of a worker host (anything
/// but letters, digits, `-` and `_` becomes `_`).
pub fn repo_dir_name(repo: &str) -> String {
    let name: String = repo
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("repo-{name}")
}

/// Where a clone of `repo` also appears inside a worker's sandbox: one
/// path for every run of it on the host, so what a setup made in one tree
/// works in another; an external agent starts there, and the server judges
/// its file writes against it.
pub fn stable_path(repo: &str) -> PathBuf {
    Path::new("/workspace").join(repo_dir_name(repo))
}

/// `tree` as it appears at `stable` in the sandbox (see the server's
/// warm caches).
pub fn alias(stable: PathBuf, tree: &Path, start_here: bool) -> WorktreeAlias {
    setup_run::alias_at(stable, tree, start_here)
}

/// Makes the setup's own cargo home in `tree`, with `config` when not
/// empty; never through a link.
pub fn prepare_cargo_home(tree: &Path, config: &str) -> std::io::Result<()> {
    setup_run::prepare_cargo_home(tree, config)
}

/// The toolchains a cache is made with on this host.
pub fn toolchain_versions() -> Vec<String> {
    warm_cache::toolchain_versions()
}

/// Takes the files `patterns` (`[checks] artifacts`) name from `clone`
/// into `store` (by SHA-256), as this machine takes a task's artifacts:
/// beneath it, never through a link, within the same limits. The files
/// taken, and those refused with why.
pub fn take_artifacts(
    clone: &Path,
    patterns: &[String],
    store: &Path,
) -> Result<TakenArtifacts, String> {
    crate::worker_artifacts::take_from(clone, patterns, store)
}

/// What [`take_artifacts`] took: `(path, sha256)`, and `(path, reason)` of
/// each file refused.
pub type TakenArtifacts = (Vec<(String, String)>, Vec<(String, String)>);
