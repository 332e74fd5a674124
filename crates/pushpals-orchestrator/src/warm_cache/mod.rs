//! Warm caches, one per set of inputs of a repository: the tree a setup
//! step and a warm-up run of the checks made from a base commit, kept
//! under the data directory and copied into each new task's worktree.
//!
//! An entry is built in `.building-<key>-<n>/` and renamed to `<key>/`
//! only once complete, with its manifest (inputs, outputs, digest): a
//! build cut short never looks done, and its leftovers are swept at start.
//! Tasks get copies, so no task writes into what another starts from.

mod inputs;
mod outputs;

pub(crate) use inputs::{CacheInputs, LOCK_FILES, toolchain_versions};
pub use outputs::{CopyMethod, copy_method};
pub(crate) use outputs::{copy_into, digest, untracked_entries};

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a complete entry holds besides its tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Its name.
    pub key: String,
    /// What it was made from.
    pub inputs: serde_json::Value,
    /// The commit its tree was taken from.
    pub base_commit: String,
    /// The top-most paths a task gets.
    pub entries: Vec<String>,
    /// Their files, bytes and SHA-256.
    pub files: u64,
    pub bytes: u64,
    pub sha256: String,
    /// The checks that warmed it and whether each passed at the base.
    pub warm_checks: Vec<(String, bool)>,
}

/// A complete entry.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    /// `<caches>/<key>/outputs`: only what the setup and warm-up made, at
    /// the paths they made it (a lower layer of an overlay worktree, or
    /// copied into a checkout).
    pub outputs: PathBuf,
    pub manifest: Manifest,
}

/// A build under way, in its own directory.
#[derive(Debug)]
pub(crate) struct Build {
    dir: PathBuf,
    /// Where the base commit is exported and the setup runs.
    pub tree: PathBuf,
}

/// The repository's warm caches; owns their directory and who builds
/// which.
#[derive(Debug)]
pub(crate) struct WarmCaches {
    root: PathBuf,
    /// One build per key at a time; a second task needing it waits.
    building: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The toolchains' versions, asked again after a while.
    toolchains: Mutex<Option<(std::time::Instant, Vec<String>)>>,
    /// How copies are made on the caches' file system, probed once.
    copy_method: std::sync::OnceLock<CopyMethod>,
}

/// How long the toolchains' versions are trusted before asking again.
const TOOLCHAIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Makes build directory names unique within the process.
static BUILD_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl WarmCaches {
    /// The caches under `root`; sweeps builds a stopped server left.
    pub(crate) fn new(root: PathBuf) -> Self {
        if let Ok(dir) = std::fs::read_dir(&root) {
            for entry in dir.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".building-")
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Self {
            root,
            building: Mutex::new(HashMap::new()),
            toolchains: Mutex::new(None),
            copy_method: std::sync::OnceLock::new(),
        }
    }

    /// The toolchains' versions (asked at most once a minute).
    pub(crate) fn toolchains(&self) -> Vec<String> {
        let Ok(mut known) = self.toolchains.lock() else {
            return toolchain_versions();
        };
        if let Some((at, versions)) = known.as_ref()
            && at.elapsed() < TOOLCHAIN_RECHECK
        {
            return versions.clone();
        }
        let versions = toolchain_versions();
        *known = Some((std::time::Instant::now(), versions.clone()));
        versions
    }

    /// Whether copies into worktrees share blocks (`doctor` says which).
    pub(crate) fn copy_method(&self) -> CopyMethod {
        *self.copy_method.get_or_init(|| {
            let _ = std::fs::create_dir_all(&self.root);
            copy_method(&self.root)
        })
    }

    /// Where the entries live.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The complete entry named `key`, if there is one.
    pub(crate) fn entry(&self, key: &str) -> Option<CacheEntry> {
        let dir = self.root.join(key);
        let text = std::fs::read(dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_slice(&text).ok()?;
        Some(CacheEntry {
            outputs: dir.join("outputs"),
            manifest,
        })
    }

    /// Held while `key` is built (and while it is checked for).
    pub(crate) async fn hold(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .building
            .lock()
            .map(|mut building| Arc::clone(building.entry(key.to_owned()).or_default()))
            .unwrap_or_default();
        lock.lock_owned().await
    }

    /// Whether some task is building or checking for `key` now.
    fn busy(&self, key: &str) -> bool {
        self.building
            .lock()
            .ok()
            .and_then(|b| b.get(key).map(|lock| lock.try_lock().is_err()))
            .unwrap_or(false)
    }

    /// A fresh directory to build `key` in.
    pub(crate) fn start_build(&self, key: &str) -> std::io::Result<Build> {
        let n = BUILD_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self
            .root
            .join(format!(".building-{key}-{}-{n}", std::process::id()));
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree)?;
        Ok(Build { dir, tree })
    }

    /// Makes a finished build the entry for its key: its outputs move
    /// out of the tree (the commit's own files go), the manifest is
    /// written, then the directory is renamed into place (atomic).
    pub(crate) fn seal(&self, build: Build, manifest: Manifest) -> std::io::Result<CacheEntry> {
        let outputs = build.dir.join("outputs");
        std::fs::create_dir_all(&outputs)?;
        for entry in &manifest.entries {
            let to = outputs.join(entry);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(build.tree.join(entry), to)?;
        }
        std::fs::remove_dir_all(&build.tree)?;
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        std::fs::write(build.dir.join("manifest.json"), bytes)?;
        let dir = self.root.join(&manifest.key);
        std::fs::rename(&build.dir, &dir)?;
        Ok(CacheEntry {
            outputs: dir.join("outputs"),
            manifest,
        })
    }

    /// Drops a build that failed: nothing of it is kept.
    pub(crate) fn discard(&self, build: Build) {
        let _ = std::fs::remove_dir_all(&build.dir);
    }

    /// Every complete entry's key with the bytes it holds.
    pub(crate) fn sizes(&self) -> Vec<(String, u64)> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut sizes: Vec<(String, u64)> = dir
            .flatten()
            .filter(|e| {
                !e.file_name().to_string_lossy().starts_with('.')
                    && e.path().join("manifest.json").is_file()
            })
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    crate::retention::size_of(&e.path()),
                )
            })
            .collect();
        sizes.sort();
        sizes
    }

    /// Removes every entry but `keep`, those being built or copied, and
    /// those under a task's overlay (`layered`: the directories worktrees
    /// sit on); returns what went (or would go, on a dry run) with its
    /// bytes.
    pub(crate) fn remove_unused(
        &self,
        keep: Option<&str>,
        layered: &[PathBuf],
        dry_run: bool,
    ) -> Vec<(String, u64)> {
        let mut removed = Vec::new();
        for (key, bytes) in self.sizes() {
            let outputs = self.root.join(&key).join("outputs");
            if Some(key.as_str()) == keep || self.busy(&key) || layered.contains(&outputs) {
                continue;
            }
            if !dry_run {
                // Renamed first, so a half-removed entry never looks whole.
                let doomed = self.root.join(format!(".building-removed-{key}"));
                if std::fs::rename(self.root.join(&key), &doomed).is_err() {
                    continue;
                }
                let _ = std::fs::remove_dir_all(&doomed);
            }
            removed.push((key, bytes));
        }
        removed
    }
}

/// Where a repository's worktree also appears inside the sandbox:
/// `/workspace/<the repository's directory name>`, so every task of it and
/// its setup see one path.
pub(crate) fn stable_path(repo_root: &Path) -> PathBuf {
    let name: String = repo_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() || name.chars().all(|c| c == '.') {
        "repo".to_owned()
    } else {
        name
    };
    Path::new("/workspace").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(key: &str) -> Manifest {
        Manifest {
            key: key.into(),
            inputs: serde_json::json!({}),
            base_commit: "abc".into(),
            entries: vec!["target".into()],
            files: 1,
            bytes: 1,
            sha256: String::new(),
            warm_checks: Vec::new(),
        }
    }

    #[tokio::test]
    async fn an_entry_exists_only_once_sealed_and_leftover_builds_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let caches = WarmCaches::new(root.path().to_path_buf());
        let build = caches.start_build("k1").unwrap();
        std::fs::create_dir_all(build.tree.join("target")).unwrap();
        std::fs::write(build.tree.join("target/f"), "x").unwrap();
        std::fs::write(build.tree.join("tracked.rs"), "the commit's").unwrap();
        assert!(caches.entry("k1").is_none(), "a build is not an entry");
        let entry = caches.seal(build, manifest("k1")).unwrap();
        assert_eq!(
            std::fs::read_to_string(entry.outputs.join("target/f")).unwrap(),
            "x"
        );
        assert!(
            !entry.outputs.join("tracked.rs").exists(),
            "only outputs are kept"
        );
        assert_eq!(caches.entry("k1").unwrap().manifest.entries, ["target"]);

        // A build a stopped server left is gone at the next start.
        let left = caches.start_build("k2").unwrap();
        drop(caches);
        let caches = WarmCaches::new(root.path().to_path_buf());
        assert!(!left.dir.exists());
        assert!(caches.entry("k1").is_some());

        // Clean-up keeps the current entry and one in use.
        let entry = caches.start_build("k3").unwrap();
        std::fs::create_dir_all(entry.tree.join("target")).unwrap();
        let k3 = caches.seal(entry, manifest("k3")).unwrap();
        let in_use = caches.hold("k3").await;
        assert!(
            caches
                .remove_unused(None, &[], false)
                .iter()
                .any(|(k, _)| k == "k1")
        );
        assert!(caches.entry("k3").is_some(), "an entry in use was removed");
        drop(in_use);
        assert_eq!(caches.remove_unused(Some("k3"), &[], true), []);
        assert_eq!(
            caches.remove_unused(None, std::slice::from_ref(&k3.outputs), false),
            [],
            "an entry under a task's overlay was removed"
        );
        assert_eq!(caches.remove_unused(None, &[], false).len(), 1);
        assert!(caches.sizes().is_empty());
    }

    #[test]
    fn the_stable_path_is_a_plain_name_under_workspace() {
        assert_eq!(
            stable_path(Path::new("/src/my app")),
            Path::new("/workspace/my_app")
        );
        assert_eq!(
            stable_path(Path::new("/src/itoa")),
            Path::new("/workspace/itoa")
        );
        assert_eq!(stable_path(Path::new("/")), Path::new("/workspace/repo"));
        assert_eq!(
            stable_path(Path::new("/x/..")),
            Path::new("/workspace/repo")
        );
    }
}
