//! Moving a task's run between the server and a worker host with git: the
//! server bundles the base, the worker clones it, works, and sends back a
//! binary diff that the server applies in its own worktree.

use crate::error::{GitError, GitResult};
use crate::git::{git, run};
use crate::repo::Repo;
use std::path::Path;
use tokio::io::AsyncWriteExt;

impl Repo {
    /// Writes a bundle of the worktree's `HEAD` (its history included) to
    /// `into`, for a worker to clone.
    pub async fn bundle_head(&self, worktree: &Path, into: &Path) -> GitResult<()> {
        let mut bundle = self.command(worktree);
        bundle
            .arg("bundle")
            .arg("create")
            .arg("--quiet")
            .arg(into)
            .arg("HEAD");
        run(bundle, "bundle create").await.map(|_| ())
    }

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

/// Everything in `dir` that differs from `base`, untracked files included
/// (ignored ones not), as a binary diff `git apply` takes.
pub async fn binary_diff(dir: &Path, base: &str) -> GitResult<Vec<u8>> {
    let mut add = git(dir, &[]);
    add.args(["add", "-A"]);
    run(add, "add -A").await?;
    let mut diff = git(dir, &[]);
    diff.args([
        "diff",
        "--cached",
        "--binary",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        "--no-renames",
        base,
    ]);
    run(diff, "diff").await
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
    use std::process::Command;

    fn sh(dir: &Path, line: &str) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "{line}");
    }

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
        repo.bundle_head(&origin, &bundle).await.unwrap();

        let copy = temp.path().join("worker/copy");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        clone_bundle(&bundle, &copy, &base).await.unwrap();
        std::fs::write(copy.join("kept.txt"), "one\ntwo\n").unwrap();
        std::fs::remove_file(copy.join("gone.txt")).unwrap();
        std::fs::write(copy.join("new.bin"), [0u8, 159, 146, 150, 255]).unwrap();
        let diff = binary_diff(&copy, &base).await.unwrap();

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
        assert!(binary_diff(&copy, "not-a-commit").await.is_err());
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
