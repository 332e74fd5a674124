//! What a setup and a warm-up leave in a tree besides the commit's own
//! files (virtual environments, `node_modules/`, `target/`), their digest,
//! and their copy into a new task's worktree.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// The top-most paths under `tree` that the commit does not track: a
/// directory with no tracked file inside is one entry; sorted.
pub(crate) fn untracked_entries(tree: &Path, tracked: &[String]) -> std::io::Result<Vec<String>> {
    let files: HashSet<&str> = tracked.iter().map(String::as_str).collect();
    let mut dirs: HashSet<&str> = HashSet::new();
    for file in tracked {
        let mut path = file.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !dirs.insert(parent) {
                break;
            }
            path = parent;
        }
    }
    let mut entries = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(tree.join(&dir))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let is_dir = entry.file_type()?.is_dir();
            if is_dir && dirs.contains(relative.as_str()) {
                pending.push(relative);
            } else if !files.contains(relative.as_str()) {
                entries.push(relative);
            }
        }
    }
    entries.sort();
    Ok(entries)
}

/// Files, bytes and the SHA-256 of everything under `entries` (paths,
/// kinds, modes, contents and link targets, in a fixed order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Digest256 {
    pub files: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Digests `entries` of `tree`.
pub(crate) fn digest(tree: &Path, entries: &[String]) -> std::io::Result<Digest256> {
    use std::os::unix::fs::PermissionsExt;
    let mut hasher = Sha256::new();
    let mut files = 0u64;
    let mut bytes = 0u64;
    let mut pending: Vec<String> = entries.iter().rev().cloned().collect();
    let mut buffer = vec![0u8; 64 * 1024];
    while let Some(relative) = pending.pop() {
        let path = tree.join(&relative);
        let meta = std::fs::symlink_metadata(&path)?;
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        if meta.file_type().is_symlink() {
            hasher.update(b"l");
            hasher.update(std::fs::read_link(&path)?.as_os_str().as_encoded_bytes());
        } else if meta.is_dir() {
            hasher.update(b"d");
            let mut children: Vec<String> = std::fs::read_dir(&path)?
                .map(|e| e.map(|e| format!("{relative}/{}", e.file_name().to_string_lossy())))
                .collect::<Result<_, _>>()?;
            children.sort();
            pending.extend(children.into_iter().rev());
        } else if meta.is_file() {
            hasher.update(format!(
                "f{:o}:{}",
                meta.permissions().mode() & 0o777,
                meta.len()
            ));
            let mut file = std::fs::File::open(&path)?;
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
            files += 1;
            bytes += meta.len();
        } else {
            hasher.update(b"o");
        }
        hasher.update([0]);
    }
    Ok(Digest256 {
        files,
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// How outputs reach a task: shared blocks where the file system can
/// (`cp --reflink`), a full copy where it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// Copy-on-write clones of the cache's files.
    Reflink,
    /// A full copy.
    Copy,
}

impl CopyMethod {
    /// For events and `doctor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reflink => "reflink",
            Self::Copy => "copy",
        }
    }
}

/// Whether `dir`'s file system clones files (tried with a small file).
pub fn copy_method(dir: &Path) -> CopyMethod {
    let from = dir.join(".reflink-probe");
    let to = dir.join(".reflink-probe-clone");
    let cloned = std::fs::write(&from, b"probe").is_ok()
        && std::process::Command::new("cp")
            .arg("--reflink=always")
            .arg(&from)
            .arg(&to)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&from);
    let _ = std::fs::remove_file(&to);
    if cloned {
        CopyMethod::Reflink
    } else {
        CopyMethod::Copy
    }
}

/// Copies `entries` of `tree` into `worktree` at the same relative paths,
/// keeping modes, times and links (cargo's fingerprints compare times);
/// clones where the file system can.
pub(crate) async fn copy_into(
    tree: &Path,
    entries: &[String],
    worktree: &Path,
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let output = tokio::process::Command::new("cp")
        .current_dir(tree)
        .args(["-a", "--reflink=auto", "--parents", "-t"])
        .arg(worktree)
        .arg("--")
        .args(entries.iter().map(|e| format!("./{e}")))
        .output()
        .await
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_commit_does_not_track_is_an_output() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        for dir in ["src/pkg/__pycache__", "target/debug", ".venv/bin", "docs"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "src/pkg/a.py",
            "src/pkg/__pycache__/a.pyc",
            "src/pkg/egg.txt",
            "target/debug/x",
            ".venv/bin/python",
            "Cargo.toml",
            "docs/index.md",
        ] {
            std::fs::write(root.join(file), file).unwrap();
        }
        let tracked = ["src/pkg/a.py", "Cargo.toml", "docs/index.md"].map(String::from);
        assert_eq!(
            untracked_entries(root, &tracked).unwrap(),
            [".venv", "src/pkg/__pycache__", "src/pkg/egg.txt", "target"]
        );
    }

    #[tokio::test]
    async fn copies_keep_paths_times_and_links_and_the_digest_sees_any_change() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "data").unwrap();
        std::os::unix::fs::symlink("b/f", root.join("a/link")).unwrap();
        std::fs::write(root.join("-top"), "dash").unwrap();
        let entries = ["-top", "a"].map(String::from);
        let before = digest(root, &entries).unwrap();
        assert_eq!((before.files, before.bytes), (2, 8));

        let worktree = tempfile::tempdir().unwrap();
        copy_into(root, &entries, worktree.path()).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(worktree.path().join("a/link")).unwrap(),
            "data"
        );
        let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(
            mtime(&root.join("a/b/f")),
            mtime(&worktree.path().join("a/b/f"))
        );
        assert_eq!(digest(worktree.path(), &entries).unwrap(), before);
        // Writing the copy leaves the cache as it was.
        std::fs::write(worktree.path().join("a/b/f"), "changed").unwrap();
        assert_eq!(digest(root, &entries).unwrap(), before);
        assert_ne!(digest(worktree.path(), &entries).unwrap(), before);
        let err = copy_into(root, &["missing".into()], worktree.path())
            .await
            .unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
