//! Merging a task branch into the base branch locally, without touching a
//! branch that is checked out in anybody's working tree.

use crate::error::{GitError, GitResult};
use crate::git::{run, run_text};
use crate::repo::Repo;
use crate::worktree::Identity;

/// What a merge did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// The base moved forward to the task branch.
    FastForward {
        /// The base's new head.
        head: String,
    },
    /// A merge commit joins the two.
    MergeCommit {
        /// The merge commit.
        head: String,
    },
    /// The branches conflict; nothing changed.
    Conflicts {
        /// The files in conflict.
        files: Vec<String>,
    },
    /// The base is checked out in a working tree; nothing changed.
    CheckedOut {
        /// Where.
        worktree: String,
    },
}

impl Repo {
    /// Merges `branch` into `base`: a fast-forward when possible, else a
    /// merge commit made without a working tree. Refuses when `base` is
    /// checked out anywhere (its files would change under someone) or the
    /// branches conflict.
    pub async fn merge_into(
        &self,
        base: &str,
        branch: &str,
        message: &str,
        identity: &Identity,
    ) -> GitResult<Merge> {
        let listing = {
            let _one_at_a_time = self.worktree_lock().await;
            let mut list = self.command(self.root());
            list.args(["worktree", "list", "--porcelain"]);
            run_text(list, "worktree list").await?
        };
        let mut current_worktree = String::new();
        for line in listing.lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                current_worktree = path.to_owned();
            }
            if line == format!("branch refs/heads/{base}") {
                return Ok(Merge::CheckedOut {
                    worktree: current_worktree,
                });
            }
        }
        let base_head = self.resolve(&format!("refs/heads/{base}")).await?;
        let branch_head = self.resolve(&format!("refs/heads/{branch}")).await?;
        let mut ancestor = self.command(self.root());
        ancestor.args(["merge-base", "--is-ancestor", &base_head, &branch_head]);
        let head = if run(ancestor, "merge-base").await.is_ok() {
            self.move_branch(base, &branch_head, &base_head).await?;
            return Ok(Merge::FastForward { head: branch_head });
        } else {
            let mut merge_tree = self.command(self.root());
            merge_tree.args([
                "merge-tree",
                "--write-tree",
                "--name-only",
                &base_head,
                &branch_head,
            ]);
            let output = merge_tree.output().await.map_err(GitError::Spawn)?;
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let mut lines = text.lines();
            let tree = lines.next().unwrap_or_default().to_owned();
            if output.status.code() == Some(1) {
                let files = lines
                    .take_while(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                return Ok(Merge::Conflicts { files });
            }
            if !output.status.success() || tree.is_empty() {
                return Err(GitError::Failed {
                    command: "merge-tree".into(),
                    status: output.status.to_string(),
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                });
            }
            let mut commit = self.command(self.root());
            commit
                .args([
                    "commit-tree",
                    &tree,
                    "-p",
                    &base_head,
                    "-p",
                    &branch_head,
                    "-m",
                    message,
                ])
                .env("GIT_AUTHOR_NAME", &identity.name)
                .env("GIT_AUTHOR_EMAIL", &identity.email)
                .env("GIT_COMMITTER_NAME", &identity.name)
                .env("GIT_COMMITTER_EMAIL", &identity.email);
            run_text(commit, "commit-tree").await?
        };
        self.move_branch(base, &head, &base_head).await?;
        Ok(Merge::MergeCommit { head })
    }

    async fn resolve(&self, reference: &str) -> GitResult<String> {
        let mut command = self.command(self.root());
        command.args(["rev-parse", "--verify", &format!("{reference}^{{commit}}")]);
        run_text(command, "rev-parse").await
    }

    /// Moves a branch from `old` to `new`, failing if it moved meanwhile.
    async fn move_branch(&self, branch: &str, new: &str, old: &str) -> GitResult<()> {
        let mut update = self.command(self.root());
        update.args(["update-ref", &format!("refs/heads/{branch}"), new, old]);
        run(update, "update-ref").await?;
        Ok(())
    }
}
