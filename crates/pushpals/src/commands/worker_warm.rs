//! A worker host's own warm caches: under `<data-dir>/worker/warm/`, one
//! directory per key the server names joined with this host's toolchains
//! (a toolchain upgraded here makes new ones). `warm` gives a run's clone
//! the cache when there is one, else makes a tree of the run's base to
//! build it in (the server then runs the setup and the checks there);
//! `seal` keeps what they left and gives the clone a copy. What a cache
//! brings is left out of the run's changes.

use anyhow::{Context, Result, bail};
use pushpals_core::worker_wire::WarmReport;
use pushpals_orchestrator::worker_host;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a kept cache holds, in its `manifest.json`.
#[derive(Serialize, Deserialize)]
struct Manifest {
    key: String,
    built_at: String,
    entries: Vec<String>,
    files: u64,
    bytes: u64,
    sha256: String,
}

/// How many kept caches a host keeps (the ones used last).
const KEPT_CACHES: usize = 8;
/// How long this host's toolchain versions are trusted before they are
/// asked again (each ask runs three programs).
const TOOLCHAIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(300);

/// The caches of this host.
pub(super) struct WarmCaches {
    root: PathBuf,
    /// Held to read while a cache is copied into a clone, to write while
    /// old caches are removed.
    in_use: tokio::sync::RwLock<()>,
    /// This host's toolchain versions, and when they were read.
    toolchains: std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

impl WarmCaches {
    pub(super) fn new(root: PathBuf) -> Self {
        Self {
            root,
            in_use: tokio::sync::RwLock::new(()),
            toolchains: std::sync::Mutex::new(None),
        }
    }

    /// Removes the kept caches beyond the [`KEPT_CACHES`] used last
    /// (none is being copied meanwhile).
    async fn prune(&self) {
        let _removing = self.in_use.write().await;
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut kept: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").is_file())
            .map(|p| {
                let used = std::fs::metadata(p.join("last-used"))
                    .or_else(|_| std::fs::metadata(p.join("manifest.json")))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (used, p)
            })
            .collect();
        kept.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
        for (_, old) in kept.into_iter().skip(KEPT_CACHES) {
            // Its manifest first: a half-removed cache is never given.
            let _ = std::fs::remove_file(old.join("manifest.json"));
            let _ = std::fs::remove_dir_all(&old);
        }
    }

    /// The directory of the cache `key` on this host.
    fn dir(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("the server named a cache key {key:?} that is not hex");
        }
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(key.as_bytes());
        for version in self.toolchains() {
            hasher.update(b"\n");
            hasher.update(version.as_bytes());
        }
        Ok(self.root.join(&hex::encode(hasher.finalize())[..40]))
    }

    /// This host's toolchain versions, read again after
    /// [`TOOLCHAIN_RECHECK`].
    fn toolchains(&self) -> Vec<String> {
        let mut known = self
            .toolchains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match known.as_ref() {
            Some((at, versions)) if at.elapsed() < TOOLCHAIN_RECHECK => versions.clone(),
            _ => {
                let versions = worker_host::toolchain_versions();
                *known = Some((std::time::Instant::now(), versions.clone()));
                versions
            }
        }
    }

    /// Where run `task` builds the cache `key`.
    pub(super) fn build_tree(&self, key: &str, task: &str) -> Result<PathBuf> {
        Ok(self
            .dir(key)?
            .with_extension(format!("build-{task}"))
            .join("tree"))
    }

    /// Gives `clone` the cache `key` when this host has it; else makes
    /// the tree to build it in (`build`, from the clone's base).
    pub(super) async fn warm(&self, clone: &Path, key: &str, task: &str) -> Result<WarmReport> {
        let dir = self.dir(key)?;
        let copying = self.in_use.read().await;
        if dir.join("manifest.json").is_file() {
            match give(&dir, clone, key).await {
                Ok(report) => return Ok(report),
                // A cache that cannot be read or copied is built anew.
                Err(error) => {
                    say!(
                        "The warm cache {} is broken ({error:#}); building it again.",
                        dir.display()
                    );
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot remove {}", dir.display()))?;
                }
            }
        }
        drop(copying);
        let tree = self.build_tree(key, task)?;
        let build = tree.parent().unwrap_or(&tree).to_path_buf();
        if build.exists() {
            std::fs::remove_dir_all(&build)
                .with_context(|| format!("cannot clear {}", build.display()))?;
        }
        std::fs::create_dir_all(&tree)
            .with_context(|| format!("cannot make {}", tree.display()))?;
        let repo = pushpals_workspace::Repo::open(clone)
            .await
            .context("cannot open the clone")?;
        repo.export_tree("HEAD", &tree)
            .await
            .context("cannot export the base to build the cache in")?;
        Ok(WarmReport {
            key: key.to_owned(),
            used: false,
            ..WarmReport::default()
        })
    }

    /// Keeps run `task`'s build of `key` (unless another run kept one
    /// first) and gives `clone` a copy.
    pub(super) async fn seal(&self, clone: &Path, key: &str, task: &str) -> Result<WarmReport> {
        let dir = self.dir(key)?;
        let tree = self.build_tree(key, task)?;
        let build = tree.parent().unwrap_or(&tree).to_path_buf();
        if !tree.is_dir() {
            bail!("there is no build of this cache here (was the worker restarted?)");
        }
        let repo = pushpals_workspace::Repo::open(clone)
            .await
            .context("cannot open the clone")?;
        let built_at = repo.head_commit().await.context("cannot read the base")?;
        let tracked = repo
            .files_at("HEAD")
            .await
            .context("cannot list the base's files")?;
        let read_from = tree.clone();
        let outputs =
            tokio::task::spawn_blocking(move || worker_host::outputs(&read_from, &tracked))
                .await
                .context("reading the build stopped")?
                .context("cannot read what the setup made")?;
        let manifest = Manifest {
            key: key.to_owned(),
            built_at,
            entries: outputs.entries,
            files: outputs.files,
            bytes: outputs.bytes,
            sha256: outputs.sha256,
        };
        let text = serde_json::to_vec_pretty(&manifest).context("cannot write the manifest")?;
        std::fs::write(build.join("manifest.json"), text)
            .with_context(|| format!("cannot write {}", build.display()))?;
        // Kept by a rename, which never replaces a kept cache another run
        // may be copying from: when one is there first, ours goes.
        let copying = self.in_use.read().await;
        if std::fs::rename(&build, &dir).is_err() {
            if !dir.join("manifest.json").is_file() {
                // What is in the way is no cache (a half-removed one).
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot clear {}", dir.display()))?;
                std::fs::rename(&build, &dir)
                    .with_context(|| format!("cannot keep {}", dir.display()))?;
            } else {
                let _ = std::fs::remove_dir_all(&build);
            }
        }
        let given = give(&dir, clone, key).await;
        drop(copying);
        self.prune().await;
        given
    }

    /// Removes run `task`'s unfinished builds (the run is over).
    pub(super) fn drop_builds(&self, task: &str) {
        self.remove_builds(&format!(".build-{task}"));
    }

    /// Removes every unfinished build (this host starts: the runs that
    /// made them are not its any more).
    pub(super) fn drop_all_builds(&self) {
        self.remove_builds(".build-");
    }

    fn remove_builds(&self, marked: &str) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".build-") && name.contains(marked) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Copies the kept cache in `dir` into `clone`, left out of its changes.
async fn give(dir: &Path, clone: &Path, key: &str) -> Result<WarmReport> {
    let text = std::fs::read(dir.join("manifest.json"))
        .with_context(|| format!("cannot read {}", dir.display()))?;
    // When it was used last, for the clean-up.
    let _ = std::fs::write(dir.join("last-used"), b"");
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a cache's manifest", dir.display()))?;
    worker_host::copy_outputs(&dir.join("tree"), &manifest.entries, clone)
        .await
        .map_err(|e| anyhow::anyhow!("cannot copy the cache into the clone: {e}"))?;
    pushpals_workspace::exclude_in_clone(clone, &manifest.entries)
        .context("cannot leave the cache out of the run's changes")?;
    Ok(WarmReport {
        key: key.to_owned(),
        used: true,
        entries: manifest.entries,
        files: manifest.files,
        bytes: manifest.bytes,
        sha256: manifest.sha256,
        built_at: manifest.built_at,
        ..WarmReport::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(dir: &Path, line: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn clone_at(temp: &Path, name: &str) -> PathBuf {
        let dir = temp.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        sh(
            &dir,
            "git init -q -b main && printf 'x\\n' > tracked.txt && git add . \
             && git -c user.name=t -c user.email=t@t commit -q -m base",
        );
        dir
    }

    const KEY: &str = "0123456789abcdef";

    #[tokio::test]
    async fn a_cache_is_built_once_kept_and_given_to_every_clone_outside_its_changes() {
        let temp = tempfile::tempdir().unwrap();
        let caches = WarmCaches::new(temp.path().join("warm"));
        let first = clone_at(temp.path(), "one");

        let asked = caches.warm(&first, KEY, "t1").await.unwrap();
        assert!(!asked.used);
        // A second run builds the same cache at the same time.
        let other = clone_at(temp.path(), "other");
        assert!(!caches.warm(&other, KEY, "t9").await.unwrap().used);
        let other_tree = caches.build_tree(KEY, "t9").unwrap();
        std::fs::create_dir_all(other_tree.join(".venv")).unwrap();
        std::fs::write(other_tree.join(".venv/second"), "").unwrap();
        let tree = caches.build_tree(KEY, "t1").unwrap();
        assert_eq!(
            std::fs::read_to_string(tree.join("tracked.txt")).unwrap(),
            "x\n"
        );
        // The setup makes a virtual environment in the build.
        std::fs::create_dir_all(tree.join(".venv/bin")).unwrap();
        std::fs::write(tree.join(".venv/bin/python"), "#!/bin/sh\n").unwrap();
        let sealed = caches.seal(&first, KEY, "t1").await.unwrap();
        assert!(sealed.used);
        assert_eq!(sealed.entries, [".venv"]);
        assert_eq!(sealed.files, 1);
        assert_eq!(sealed.built_at.len(), 40);
        assert!(first.join(".venv/bin/python").is_file());
        assert_eq!(
            sh(&first, "git status --porcelain"),
            "",
            "left out of the changes"
        );
        assert!(!tree.exists(), "the build became the cache");
        // The second build, kept later, goes: the first stays and is given.
        let second_kept = caches.seal(&other, KEY, "t9").await.unwrap();
        assert_eq!(second_kept.sha256, sealed.sha256);
        assert!(!other_tree.exists());
        assert!(other.join(".venv/bin/python").is_file());

        // Another clone gets the kept cache at once.
        let second = clone_at(temp.path(), "two");
        let given = caches.warm(&second, KEY, "t2").await.unwrap();
        assert!(given.used);
        assert_eq!(given.sha256, sealed.sha256);
        assert!(second.join(".venv/bin/python").is_file());
        assert_eq!(sh(&second, "git status --porcelain"), "");
    }

    #[tokio::test]
    async fn only_the_caches_used_last_are_kept() {
        let temp = tempfile::tempdir().unwrap();
        let caches = WarmCaches::new(temp.path().join("warm"));
        let clone = clone_at(temp.path(), "one");
        let keys: Vec<String> = (0..KEPT_CACHES + 2).map(|n| format!("{n:016x}")).collect();
        for (n, key) in keys.iter().enumerate() {
            caches.warm(&clone, key, "t").await.unwrap();
            caches.seal(&clone, key, "t").await.unwrap();
            // The oldest stays in use: it is kept.
            if n > 0 {
                assert!(caches.warm(&clone, &keys[0], "t").await.unwrap().used);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let kept = |key: &str| caches.dir(key).unwrap().join("manifest.json").is_file();
        assert!(kept(&keys[0]), "used last, kept");
        assert!(!kept(&keys[1]) && !kept(&keys[2]), "used least, removed");
        assert!(kept(&keys[KEPT_CACHES + 1]));
        let count = std::fs::read_dir(temp.path().join("warm")).unwrap().count();
        assert_eq!(count, KEPT_CACHES);
    }

    #[tokio::test]
    async fn a_bad_key_and_a_missing_build_are_named_and_a_broken_cache_is_built_again() {
        let temp = tempfile::tempdir().unwrap();
        let caches = WarmCaches::new(temp.path().join("warm"));
        let clone = clone_at(temp.path(), "one");
        let bad = caches.warm(&clone, "../../etc", "t1").await.unwrap_err();
        assert!(bad.to_string().contains("not hex"), "{bad}");
        let missing = caches.seal(&clone, KEY, "t1").await.unwrap_err();
        assert!(missing.to_string().contains("no build"), "{missing}");

        // A build left by a run that ended goes, and at a start every
        // build of a run of before.
        caches.warm(&clone, KEY, "t1").await.unwrap();
        caches.warm(&clone, KEY, "t3").await.unwrap();
        caches.drop_builds("t1");
        assert!(!caches.build_tree(KEY, "t1").unwrap().exists());
        assert!(caches.build_tree(KEY, "t3").unwrap().exists());
        caches.drop_all_builds();
        assert!(!caches.build_tree(KEY, "t3").unwrap().exists());

        // A kept cache whose manifest is broken is not trusted: it is
        // removed and built again.
        let dir = caches.dir(KEY).unwrap();
        std::fs::create_dir_all(dir.join("tree")).unwrap();
        std::fs::write(dir.join("manifest.json"), "{").unwrap();
        let again = caches.warm(&clone, KEY, "t2").await.unwrap();
        assert!(!again.used);
        assert!(!dir.exists());
        assert!(
            caches
                .build_tree(KEY, "t2")
                .unwrap()
                .join("tracked.txt")
                .is_file()
        );
    }
}
