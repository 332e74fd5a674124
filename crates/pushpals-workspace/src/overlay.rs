//! Task worktrees as overlays: one pristine export of each base commit,
//! shared read-only by every task that starts there, under a writable layer
//! of the task's own. Starting a task then writes no files but git's
//! index, instead of checking out every file of the repository.
//!
//! Mounting an overlay needs the right to mount (root, or `CAP_SYS_ADMIN`);
//! without it [`Overlays::probe`] says why and tasks get a plain checkout.
//! A task's layer keeps `lower` (the pristine tree it sits on), so its
//! worktree can be mounted again after a reboot; its git entry is locked,
//! so `git worktree prune` never drops it while it is not mounted.

use crate::error::{GitError, GitResult};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where pristine trees and task layers live, on a machine where overlays
/// can be mounted.
#[derive(Debug, Clone)]
pub struct Overlays {
    pristine_root: PathBuf,
    layers_root: PathBuf,
}

/// Makes build directory names unique within the process.
static BUILD_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> GitError {
    move |source| GitError::Io { context, source }
}

impl Overlays {
    /// Overlays under `dir` (`pristine/` and `layers/`), when a test mount
    /// there works; otherwise why not, in words for `doctor`.
    pub fn probe(dir: &Path) -> Result<Self, String> {
        let overlays = Self {
            pristine_root: dir.join("pristine"),
            layers_root: dir.join("layers"),
        };
        let probe = dir.join(format!(".overlay-probe-{}", std::process::id()));
        let result = (|| {
            for sub in ["lower", "upper", "work", "merged"] {
                std::fs::create_dir_all(probe.join(sub))
                    .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
            }
            std::fs::write(probe.join("lower/file"), "probe")
                .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
            mount(
                &[probe.join("lower")],
                &probe.join("upper"),
                &probe.join("work"),
                &probe.join("merged"),
            )?;
            let seen = std::fs::read(probe.join("merged/file")).ok();
            unmount(&probe.join("merged"));
            if seen.as_deref() == Some(b"probe") {
                Ok(())
            } else {
                Err("a test overlay mounted but did not show its lower layer".to_owned())
            }
        })();
        let _ = std::fs::remove_dir_all(&probe);
        // Exports a stopped server cut short are never used: they go.
        if let Ok(entries) = std::fs::read_dir(&overlays.pristine_root) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".building-")
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        result.map(|()| overlays)
    }

    /// The pristine export of `commit`, made once (in a build directory
    /// renamed into place, so a half-made one is never used).
    pub(crate) async fn pristine(&self, repo: &crate::Repo, commit: &str) -> GitResult<PathBuf> {
        let tree = self.pristine_root.join(commit);
        if tree.is_dir() {
            return Ok(tree);
        }
        let n = BUILD_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let building = self
            .pristine_root
            .join(format!(".building-{commit}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&building)
            .map_err(io_error(format!("cannot create {}", building.display())))?;
        if let Err(error) = repo.export_tree(commit, &building).await {
            let _ = std::fs::remove_dir_all(&building);
            return Err(error);
        }
        if std::fs::rename(&building, &tree).is_err() {
            // Another task made it meanwhile: theirs serves.
            let _ = std::fs::remove_dir_all(&building);
            if !tree.is_dir() {
                return Err(GitError::Io {
                    context: format!("cannot keep the pristine tree {}", tree.display()),
                    source: std::io::Error::other("rename failed"),
                });
            }
        }
        Ok(tree)
    }

    /// The layer directory of the worktree at `worktree_path`.
    pub(crate) fn layer(&self, worktree_path: &Path) -> PathBuf {
        let name = worktree_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        self.layers_root.join(name)
    }

    /// Prepares the layer of `worktree_path` on `lower` (recorded) and
    /// mounts the overlay there.
    pub(crate) fn mount_new(&self, lower: &Path, worktree_path: &Path) -> GitResult<()> {
        let layer = self.layer(worktree_path);
        for sub in ["upper", "work"] {
            std::fs::create_dir_all(layer.join(sub))
                .map_err(io_error(format!("cannot create {}", layer.display())))?;
        }
        std::fs::write(layer.join("lower"), lower.as_os_str().as_encoded_bytes())
            .map_err(io_error(format!("cannot write {}", layer.display())))?;
        self.mount_layer(worktree_path)
    }

    /// The read-only layers under a task's layer, top first (one per line
    /// of its `lower` file).
    fn lowers(&self, worktree_path: &Path) -> GitResult<Vec<PathBuf>> {
        let layer = self.layer(worktree_path);
        let lower = std::fs::read(layer.join("lower"))
            .map_err(io_error(format!("cannot read {}/lower", layer.display())))?;
        Ok(String::from_utf8_lossy(&lower)
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect())
    }

    /// Puts `dir` under the task's worktree as its lowest layer (a warm
    /// cache's outputs: the base commit's files stay on top), mounting
    /// the overlay again.
    pub(crate) fn add_lowest(&self, worktree_path: &Path, dir: &Path) -> GitResult<()> {
        let mut lowers = self.lowers(worktree_path)?;
        if lowers.iter().any(|l| l == dir) {
            return Ok(());
        }
        lowers.push(dir.to_path_buf());
        let text: Vec<String> = lowers
            .iter()
            .map(|l| l.to_string_lossy().into_owned())
            .collect();
        if is_mounted(worktree_path) {
            unmount(worktree_path);
        }
        let layer = self.layer(worktree_path);
        std::fs::write(layer.join("lower"), text.join("\n"))
            .map_err(io_error(format!("cannot write {}/lower", layer.display())))?;
        self.mount_layer(worktree_path)
    }

    /// Every directory some task's worktree sits on.
    pub fn lowers_in_use(&self) -> Vec<PathBuf> {
        let Ok(layers) = std::fs::read_dir(&self.layers_root) else {
            return Vec::new();
        };
        layers
            .flatten()
            .filter_map(|layer| std::fs::read(layer.path().join("lower")).ok())
            .flat_map(|lower| {
                String::from_utf8_lossy(&lower)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Mounts the overlay of an existing layer at `worktree_path`.
    pub(crate) fn mount_layer(&self, worktree_path: &Path) -> GitResult<()> {
        let layer = self.layer(worktree_path);
        let lowers = self.lowers(worktree_path)?;
        mount(
            &lowers,
            &layer.join("upper"),
            &layer.join("work"),
            worktree_path,
        )
        .map_err(|message| GitError::Io {
            context: format!("cannot mount the overlay at {}", worktree_path.display()),
            source: std::io::Error::other(message),
        })
    }

    /// Whether `worktree_path` has a layer (it was made as an overlay).
    pub(crate) fn has_layer(&self, worktree_path: &Path) -> bool {
        self.layer(worktree_path).join("lower").is_file()
    }

    /// Unmounts `worktree_path` if it is mounted, puts git's `.git` file
    /// back in the plain directory (so git can remove the worktree as any
    /// other) and removes the layer.
    pub(crate) fn dismantle(&self, worktree_path: &Path) -> GitResult<()> {
        if is_mounted(worktree_path) {
            unmount(worktree_path);
            if is_mounted(worktree_path) {
                return Err(GitError::Io {
                    context: format!("cannot unmount {}", worktree_path.display()),
                    source: std::io::Error::other("still mounted (busy)"),
                });
            }
        }
        let layer = self.layer(worktree_path);
        let dot_git = layer.join("upper/.git");
        if dot_git.is_file() && worktree_path.is_dir() && !worktree_path.join(".git").exists() {
            std::fs::rename(&dot_git, worktree_path.join(".git")).map_err(io_error(format!(
                "cannot restore {}/.git",
                worktree_path.display()
            )))?;
        }
        if layer.exists() {
            std::fs::remove_dir_all(&layer)
                .map_err(io_error(format!("cannot remove {}", layer.display())))?;
        }
        Ok(())
    }

    /// Removes pristine trees no layer sits on, but `keep`; returns the
    /// commits whose trees went, with their bytes.
    pub fn remove_unused_pristine(&self, keep: &[String]) -> Vec<(String, u64)> {
        let used = self.lowers_in_use();
        let mut removed = Vec::new();
        let Ok(trees) = std::fs::read_dir(&self.pristine_root) else {
            return removed;
        };
        for tree in trees.flatten() {
            let name = tree.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) || used.contains(&tree.path()) {
                continue;
            }
            let bytes = size_of(&tree.path());
            if std::fs::remove_dir_all(tree.path()).is_ok() {
                removed.push((name, bytes));
            }
        }
        removed
    }
}

/// The bytes of the files under `path`, not following links.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}

/// `mount -t overlay` of `lowers` (top first) under `upper` at `target`.
fn mount(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<(), String> {
    for path in lowers.iter().map(PathBuf::as_path).chain([upper, work]) {
        if path.to_string_lossy().contains([',', ':', '\\']) {
            return Err(format!(
                "{} holds a comma, colon or backslash, which overlay options cannot carry",
                path.display()
            ));
        }
    }
    let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    let output = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(target)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Unmounts `target` (lazily, should a process still hold it).
pub(crate) fn unmount(target: &Path) {
    let _ = Command::new("umount")
        .arg("-l")
        .arg(target)
        .stderr(std::process::Stdio::null())
        .status();
}

/// Whether something is mounted at `target` (from `/proc/self/mountinfo`,
/// whose paths escape spaces and the like as octal).
pub(crate) fn is_mounted(target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = target.to_string_lossy();
    info.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|point| unescape_octal(point) == wanted)
    })
}

fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |k: usize| u16::from(bytes[i + k] - b'0');
            let value = digit(1) * 64 + digit(2) * 8 + digit(3);
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_with_escaped_characters_are_read_back() {
        assert_eq!(unescape_octal("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_octal("/tmp/x\\"), "/tmp/x\\");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
    }
}
