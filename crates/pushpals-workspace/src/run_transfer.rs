//! Moving a task's run between the server and a worker host with git: the
//! server bundles the base, the worker clones it, works, and sends back a
//! binary diff that the server applies in its own worktree.
//!
//! An agent's run is mirrored instead: both sides name what their copy
//! holds by a git tree (every file but the ignored ones, [`snapshot_tree`]),
//! and each command's changes travel as the diff between two trees, so the
//! agent's edits on the server and a command's on the worker meet.

use crate::error::{GitError, GitResult};
use crate::git::{git, run};
use crate::repo::Repo;
use std::path::Path;
use tokio::io::AsyncWriteExt;

impl Repo {
    /// Applies a binary diff a worker sent to the worktree (nothing is
    /// staged or committed). git refuses paths outside the worktree and
    /// inside `.git`; a diff that does not apply changes nothing.
    pub async fn apply_diff(&self, worktree: &Path, diff: &[u8]) -> GitResult<()> {
        if diff.is_empty() {
            return Ok(());
        }
        let mut apply = self.command(worktree);
        apply.args(["apply", "--binary", "--whitespace=nowarn", "-"]);
        feed(apply, diff, "apply").await
    }
}

impl Repo {
    /// The tree of everything in the worktree but ignored files, written
    /// into the repository's objects through an index of its own (the
    /// worktree's index is left as it was).
    pub async fn snapshot_tree(&self, worktree: &Path) -> GitResult<String> {
        let mut where_index = self.command(worktree);
        where_index.args(["rev-parse", "--path-format=absolute", "--git-path", "index"]);
        let index = String::from_utf8_lossy(&run(where_index, "rev-parse").await?)
            .trim()
            .to_owned();
        let scratch = scratch_index(worktree)?;
        // Starting from the worktree's index, only files changed since it
        // was written are hashed again.
        if Path::new(&index).is_file() {
            std::fs::copy(&index, scratch.path()).map_err(|source| GitError::Io {
                context: format!("cannot copy {index}"),
                source,
            })?;
        }
        let mut add = self.command(worktree);
        add.env("GIT_INDEX_FILE", scratch.path())
            .args(["add", "-A"]);
        run(add, "add -A").await?;
        let mut write = self.command(worktree);
        write
            .env("GIT_INDEX_FILE", scratch.path())
            .arg("write-tree");
        tree_id(run(write, "write-tree").await?)
    }

    /// The binary diff from `from` (a tree or commit) to tree `to`.
    pub async fn tree_diff(&self, worktree: &Path, from: &str, to: &str) -> GitResult<Vec<u8>> {
        let mut diff = self.command(worktree);
        diff.args(DIFF_ARGS).args([from, to]);
        run(diff, "diff").await
    }
}

/// A scratch index file for `worktree`'s snapshot (removed when dropped).
fn scratch_index(worktree: &Path) -> GitResult<ScratchIndex> {
    ScratchIndex::new().map_err(|source| GitError::Io {
        context: format!("cannot make a scratch index for {}", worktree.display()),
        source,
    })
}

/// A temporary index file's path; the file goes when this is dropped.
struct ScratchIndex(std::path::PathBuf);

impl ScratchIndex {
    fn new() -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "pushpals-index-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A stale file of an earlier process with this id is not reused.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("lock"));
    }
}

/// The options every diff that travels between hosts is made with.
const DIFF_ARGS: [&str; 6] = [
    "diff",
    "--binary",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-renames",
];

/// A tree id from git's output.
fn tree_id(output: Vec<u8>) -> GitResult<String> {
    let id = String::from_utf8_lossy(&output).trim().to_owned();
    if id.len() >= 40 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(GitError::Failed {
            command: "write-tree".into(),
            status: "an unexpected answer".into(),
            stderr: id,
        })
    }
}

/// A worker's clone as a tree: everything but ignored files, staged in
/// the clone's own index and written.
pub async fn clone_tree(dir: &Path) -> GitResult<String> {
    let mut add = git(dir, &[]);
    add.args(["add", "-A"]);
    run(add, "add -A").await?;
    let mut write = git(dir, &[]);
    write.arg("write-tree");
    tree_id(run(write, "write-tree").await?)
}

/// The binary diff from tree `from` to tree `to` in a worker's clone.
pub async fn clone_tree_diff(dir: &Path, from: &str, to: &str) -> GitResult<Vec<u8>> {
    let mut diff = git(dir, &[]);
    diff.args(DIFF_ARGS).args([from, to]);
    run(diff, "diff").await
}

/// Applies a diff the server sent to a worker's clone.
pub async fn apply_to_clone(dir: &Path, diff: &[u8]) -> GitResult<()> {
    if diff.is_empty() {
        return Ok(());
    }
    let mut apply = git(dir, &[]);
    apply.args(["apply", "--binary", "--whitespace=nowarn", "-"]);
    feed(apply, diff, "apply").await
}

/// Clones `bundle` into `dir` (which must not exist) and checks out `base`
/// detached: a worker's copy of a task's base.
pub async fn clone_bundle(bundle: &Path, dir: &Path, base: &str) -> GitResult<()> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let mut clone = git(parent, &[]);
    clone
        .args(["clone", "--quiet", "--no-checkout"])
        .arg(bundle)
        .arg(dir);
    run(clone, "clone").await?;
    let mut checkout = git(dir, &[]);
    checkout.args(["checkout", "--quiet", "--detach", base]);
    run(checkout, "checkout").await.map(|_| ())
}

/// Runs git with `input` on its stdin.
async fn feed(mut command: tokio::process::Command, input: &[u8], what: &str) -> GitResult<()> {
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().map_err(GitError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .await
            .map_err(|source| GitError::Io {
                context: format!("cannot pass the input to git {what}"),
                source,
            })?;
    }
    let output = child.wait_with_output().await.map_err(GitError::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(GitError::Failed {
            command: what.to_owned(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_shell::sh;
    use std::process::Command;

    #[tokio::test]
    async fn a_run_goes_out_as_a_bundle_and_comes_back_as_a_diff() {
        let temp = tempfile::tempdir().unwrap();
        let origin = temp.path().join("origin");
        std::fs::create_dir(&origin).unwrap();
        sh(
            &origin,
            "git init -q -b main && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m base \
             && printf 'one\\n' > kept.txt && printf 'old\\n' > gone.txt && git add . \
             && git -c user.name=t -c user.email=t@t commit -q -m files",
        );
        let repo = Repo::open(&origin).await.unwrap();
        let base = repo.head_commit().await.unwrap();
        let bundle = temp.path().join("base.bundle");
        assert!(repo.bundle_head_since(&origin, &bundle, &[]).await.unwrap());

        let copy = temp.path().join("worker/copy");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        clone_bundle(&bundle, &copy, &base).await.unwrap();
        std::fs::write(copy.join("kept.txt"), "one\ntwo\n").unwrap();
        std::fs::remove_file(copy.join("gone.txt")).unwrap();
        std::fs::write(copy.join("new.bin"), [0u8, 159, 146, 150, 255]).unwrap();
        let after = clone_tree(&copy).await.unwrap();
        let diff = clone_tree_diff(&copy, &base, &after).await.unwrap();

        repo.apply_diff(&origin, &diff).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(origin.join("kept.txt")).unwrap(),
            "one\ntwo\n"
        );
        assert!(!origin.join("gone.txt").exists());
        assert_eq!(
            std::fs::read(origin.join("new.bin")).unwrap(),
            [0u8, 159, 146, 150, 255]
        );
        // Applied again, it no longer fits: refused, nothing changed.
        let refused = repo.apply_diff(&origin, &diff).await.unwrap_err();
        assert!(refused.to_string().contains("apply"), "{refused}");
        assert!(
            clone_tree_diff(&copy, "not-a-commit", &after)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_mirrored_run_meets_in_the_same_tree_both_ways() {
        let temp = tempfile::tempdir().unwrap();
        let origin = temp.path().join("origin");
        std::fs::create_dir(&origin).unwrap();
        sh(
            &origin,
            "git init -q -b main && printf 'target/\\n' > .gitignore && printf 'one\\n' > a.txt \
             && git add . && git -c user.name=t -c user.email=t@t commit -q -m base",
        );
        let repo = Repo::open(&origin).await.unwrap();
        let base = repo.head_commit().await.unwrap();
        let bundle = temp.path().join("base.bundle");
        assert!(repo.bundle_head_since(&origin, &bundle, &[]).await.unwrap());
        let copy = temp.path().join("worker/copy");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        clone_bundle(&bundle, &copy, &base).await.unwrap();

        // The server's side changes (an agent's edit, a new file, a binary).
        std::fs::write(origin.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(origin.join("new.bin"), [0u8, 255, 7]).unwrap();
        std::fs::create_dir(origin.join("target")).unwrap();
        std::fs::write(origin.join("target/out"), "ignored").unwrap();
        let server_tree = repo.snapshot_tree(&origin).await.unwrap();
        // The worktree's own index is as it was: nothing staged.
        let status = Command::new("git")
            .args(["status", "--porcelain"])
            .current_dir(&origin)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&status.stdout),
            " M a.txt\n?? new.bin\n"
        );
        let out = repo.tree_diff(&origin, &base, &server_tree).await.unwrap();
        apply_to_clone(&copy, &out).await.unwrap();
        assert_eq!(clone_tree(&copy).await.unwrap(), server_tree);
        assert!(!copy.join("target").exists(), "ignored files do not travel");

        // A command on the worker changes it back the other way.
        std::fs::remove_file(copy.join("new.bin")).unwrap();
        std::fs::write(copy.join("made.txt"), "by a command\n").unwrap();
        std::fs::create_dir(copy.join("target")).unwrap();
        std::fs::write(copy.join("target/build"), "ignored").unwrap();
        let worker_tree = clone_tree(&copy).await.unwrap();
        assert_ne!(worker_tree, server_tree);
        let back = clone_tree_diff(&copy, &server_tree, &worker_tree)
            .await
            .unwrap();
        repo.apply_diff(&origin, &back).await.unwrap();
        assert_eq!(repo.snapshot_tree(&origin).await.unwrap(), worker_tree);
        assert!(!origin.join("new.bin").exists());
        assert!(!origin.join("target/build").exists());
        // Unchanged, the same tree again and an empty diff.
        assert_eq!(repo.snapshot_tree(&origin).await.unwrap(), worker_tree);
        assert!(
            clone_tree_diff(&copy, &worker_tree, &worker_tree)
                .await
                .unwrap()
                .is_empty()
        );
        // A diff that does not fit the clone is refused.
        assert!(apply_to_clone(&copy, &out).await.is_err());
        assert!(clone_tree(&temp.path().join("nowhere")).await.is_err());
    }

    #[tokio::test]
    async fn a_diff_reaching_into_git_or_out_of_the_worktree_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let origin = temp.path().join("origin");
        std::fs::create_dir(&origin).unwrap();
        sh(
            &origin,
            "git init -q -b main && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m base",
        );
        let repo = Repo::open(&origin).await.unwrap();
        for path in [".git/hooks/post-checkout", "../outside.txt"] {
            let diff = format!(
                "diff --git a/{path} b/{path}\nnew file mode 100755\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+echo owned\n"
            );
            assert!(
                repo.apply_diff(&origin, diff.as_bytes()).await.is_err(),
                "{path} was applied"
            );
        }
        // A symlink out of the worktree and a file written through it.
        let through = "diff --git a/escape b/escape\nnew file mode 120000\n--- /dev/null\n+++ b/escape\n@@ -0,0 +1 @@\n+..\n\\ No newline at end of file\ndiff --git a/escape/outside.txt b/escape/outside.txt\nnew file mode 100644\n--- /dev/null\n+++ b/escape/outside.txt\n@@ -0,0 +1 @@\n+owned\n";
        assert!(repo.apply_diff(&origin, through.as_bytes()).await.is_err());
        assert!(!origin.join(".git/hooks/post-checkout").exists());
        assert!(!temp.path().join("outside.txt").exists());
    }
}
