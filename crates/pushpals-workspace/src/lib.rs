//! Git for Push Pals: the person's repository, task worktrees and branches,
//! diffs and commits.
//!
//! Every git call here names its repository explicitly and switches off what
//! a repository's config or files could use to run programs: hooks,
//! fsmonitor, pagers, external diff and textconv, filter drivers, editors,
//! signing, and the user's global and system config. The person's own
//! checkout, index and uncommitted changes are never touched: task work
//! happens in worktrees of their own. This crate never calls a model.

#![forbid(unsafe_code)]

mod base_cache;
pub mod clone;
mod delivery;
mod error;
pub mod forge;
mod git;
mod history;
mod merge;
mod overlay;
mod overlay_worktrees;
mod repo;
mod run_transfer;
pub mod secrets;
#[cfg(test)]
mod test_shell;
mod worktree;

pub use base_cache::{KEPT_BASES, cache_bundle, cached_bases, clone_cached, is_commit_id};
pub use clone::{HttpCredential, RemoteUrl};
pub use delivery::Rebase;
pub use error::{GitError, GitResult};
pub use history::CommitPatch;
pub use merge::Merge;
pub use overlay::Overlays;
pub use repo::Repo;
pub use run_transfer::{apply_to_clone, clone_bundle, clone_tree, clone_tree_diff};
pub use secrets::{
    LONG_LINE, SECRET_ALLOWLIST_PATH, SecretAllowlist, SecretFinding, SecretScanner,
};
pub use worktree::{Diff, FileChange, Identity, Worktree, exclude_in_clone};
