//! The overlay side of the repository's task worktrees: choosing
//! overlays, turning a fresh worktree into one, mounting it again after a
//! reboot, unmounting it at shutdown, putting a warm cache under it, and
//! taking it apart before git removes it.

use crate::error::{GitError, GitResult};
use crate::git::run;
use crate::repo::Repo;
use std::path::{Path, PathBuf};

impl Repo {
    /// Makes task worktrees overlays under `overlays` from now on.
    pub fn with_overlays(mut self, overlays: crate::Overlays) -> Self {
        self.overlays = Some(overlays);
        self
    }

    /// How task worktrees start: `"overlay"` or `"checkout"`.
    pub fn task_start(&self) -> &'static str {
        if self.overlays.is_some() {
            "overlay"
        } else {
            "checkout"
        }
    }

    /// Turns a `--no-checkout` worktree into an overlay: git's `.git` file
    /// moves into the task's layer, the overlay is mounted, and git's index
    /// is filled from the base commit (no file is written). Should the
    /// mount fail, the worktree gets a plain checkout instead.
    pub(crate) async fn overlay_worktree(
        &self,
        overlays: &crate::Overlays,
        pristine: &Path,
        worktree_path: &Path,
    ) -> GitResult<()> {
        let layer = overlays.layer(worktree_path);
        let moved = std::fs::create_dir_all(layer.join("upper")).is_ok()
            && std::fs::rename(worktree_path.join(".git"), layer.join("upper/.git")).is_ok();
        let mounted = moved && overlays.mount_new(pristine, worktree_path).is_ok();
        if !mounted {
            tracing::warn!(path = %worktree_path.display(), "cannot mount the task's overlay; checking it out instead");
            overlays.dismantle(worktree_path)?;
            let mut checkout = self.command(worktree_path);
            checkout.args(["reset", "--hard", "--quiet"]);
            run(checkout, "reset --hard").await?;
            let mut unlock = self.command(self.root());
            unlock.args(["worktree", "unlock"]).arg(worktree_path);
            run(unlock, "worktree unlock").await?;
            return Ok(());
        }
        let mut index = self.command(worktree_path);
        index.args(["reset", "--quiet"]);
        run(index, "reset").await?;
        Ok(())
    }

    /// Mounts again the overlay of a task worktree that is not mounted (a
    /// reboot unmounts them all); `false` when it is no overlay or already
    /// mounted.
    pub fn remount_worktree(&self, worktree_path: &Path) -> GitResult<bool> {
        let Some(overlays) = &self.overlays else {
            return Ok(false);
        };
        if !overlays.has_layer(worktree_path) || crate::overlay::is_mounted(worktree_path) {
            return Ok(false);
        }
        std::fs::create_dir_all(worktree_path).map_err(|source| GitError::Io {
            context: format!("cannot create {}", worktree_path.display()),
            source,
        })?;
        overlays.mount_layer(worktree_path)?;
        Ok(true)
    }

    /// Unmounts an overlay worktree (at shutdown: the next start mounts it
    /// again); `false` when it is no mounted overlay.
    pub fn unmount_worktree(&self, worktree_path: &Path) -> bool {
        let Some(overlays) = &self.overlays else {
            return false;
        };
        if !overlays.has_layer(worktree_path) || !crate::overlay::is_mounted(worktree_path) {
            return false;
        }
        crate::overlay::unmount(worktree_path);
        true
    }

    /// Puts `dir` under an overlay worktree as its lowest layer (a warm
    /// cache's outputs, shared copy-on-write); `false` when the worktree
    /// is no overlay (then the caller copies).
    pub fn layer_under(&self, worktree_path: &Path, dir: &Path) -> GitResult<bool> {
        let Some(overlays) = &self.overlays else {
            return Ok(false);
        };
        if !overlays.has_layer(worktree_path) {
            return Ok(false);
        }
        overlays.add_lowest(worktree_path, dir)?;
        Ok(true)
    }

    /// The directories task worktrees sit on (kept by clean-ups).
    pub fn layered_dirs(&self) -> Vec<PathBuf> {
        self.overlays
            .as_ref()
            .map(crate::Overlays::lowers_in_use)
            .unwrap_or_default()
    }

    /// Takes an overlay apart before git removes the worktree.
    pub(crate) fn dismantle(&self, worktree_path: &Path) -> GitResult<()> {
        match &self.overlays {
            Some(overlays) => overlays.dismantle(worktree_path),
            None => Ok(()),
        }
    }
}
