//! Delivery: fetching the remote base, rebasing a task branch onto it, and
//! pushing the branch.

use crate::clone::HttpCredential;
use crate::error::{GitError, GitResult};
use crate::git::{git_remote, run, run_text};
use crate::repo::Repo;
use crate::worktree::{Identity, Worktree};

/// What bringing a task branch onto the remote base did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebase {
    /// The base did not move; nothing to do.
    NotNeeded,
    /// The branch now sits on the new base; its new head.
    Rebased {
        /// The branch's head after the rebase.
        head: String,
    },
    /// The rebase stopped on conflicts and was undone; nothing changed.
    Conflicts {
        /// The files in conflict.
        files: Vec<String>,
    },
}

impl Repo {
    /// Whether the repository has a remote of this name.
    pub async fn has_remote(&self, remote: &str) -> GitResult<bool> {
        let mut command = self.command(self.root());
        command.args(["remote"]);
        let remotes = run_text(command, "remote").await?;
        Ok(remotes.lines().any(|line| line == remote))
    }

    /// The URL of the remote of this name (after git's `insteadOf`
    /// rewriting), when there is one.
    pub async fn remote_url(&self, remote: &str) -> GitResult<Option<String>> {
        let mut command = self.command(self.root());
        command.args(["remote", "get-url", "--", remote]);
        let output = command.output().await.map_err(GitError::Spawn)?;
        match output.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            )),
            // git's exit status for "No such remote".
            Some(2) => Ok(None),
            _ => Err(GitError::Failed {
                command: "remote get-url".into(),
                status: output.status.to_string(),
                stderr: crate::git::hide_credentials(
                    String::from_utf8_lossy(&output.stderr).trim(),
                ),
            }),
        }
    }

    /// Fetches `base_branch` from `remote` (with the person's credentials,
    /// or `credential` for HTTPS remotes) and returns the commit it points
    /// at.
    pub async fn fetch_base(
        &self,
        remote: &str,
        base_branch: &str,
        credential: Option<&HttpCredential>,
    ) -> GitResult<String> {
        let tracking = format!("refs/remotes/{remote}/{base_branch}");
        let mut fetch = git_remote(self.root());
        if let Some(credential) = credential {
            credential.apply(&mut fetch);
        }
        fetch.args([
            "fetch",
            "--quiet",
            "--no-tags",
            remote,
            &format!("+refs/heads/{base_branch}:{tracking}"),
        ]);
        run(fetch, "fetch").await?;
        let mut head = self.command(self.root());
        head.args(["rev-parse", "--verify", &format!("{tracking}^{{commit}}")]);
        run_text(head, "rev-parse").await
    }

    /// The commit `remote`'s `base_branch` pointed at when it was last
    /// fetched; `None` when it never was.
    pub async fn last_fetched_base(
        &self,
        remote: &str,
        base_branch: &str,
    ) -> GitResult<Option<String>> {
        let mut head = self.command(self.root());
        head.args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/remotes/{remote}/{base_branch}^{{commit}}"),
        ]);
        match run_text(head, "rev-parse").await {
            Ok(commit) => Ok(Some(commit)),
            // `--quiet --verify` fails silently when there is no such ref.
            Err(GitError::Failed { stderr, .. }) if stderr.is_empty() => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Pushes `branch` to the same name on `remote` (with the person's
    /// credentials, or `credential` for HTTPS remotes; never forced).
    pub async fn push_branch(
        &self,
        remote: &str,
        branch: &str,
        credential: Option<&HttpCredential>,
    ) -> GitResult<()> {
        let mut push = git_remote(self.root());
        if let Some(credential) = credential {
            credential.apply(&mut push);
        }
        push.args([
            "push",
            "--quiet",
            "--no-verify",
            remote,
            &format!("refs/heads/{branch}:refs/heads/{branch}"),
        ]);
        run(push, "push").await?;
        Ok(())
    }
}

impl Worktree {
    /// Moves the worktree's branch from its base onto `new_base`; on
    /// conflicts, undoes the rebase and names the files.
    pub async fn rebase_onto(&self, new_base: &str, identity: &Identity) -> GitResult<Rebase> {
        if new_base == self.base_commit() {
            return Ok(Rebase::NotNeeded);
        }
        let mut rebase = self.repo_command();
        rebase
            .args([
                "rebase",
                "--quiet",
                "--no-autostash",
                "--onto",
                new_base,
                self.base_commit(),
            ])
            .env("GIT_COMMITTER_NAME", &identity.name)
            .env("GIT_COMMITTER_EMAIL", &identity.email);
        match run(rebase, "rebase").await {
            Ok(_) => {
                let mut head = self.repo_command();
                head.args(["rev-parse", "HEAD"]);
                Ok(Rebase::Rebased {
                    head: run_text(head, "rev-parse").await?,
                })
            }
            Err(GitError::Failed { .. }) => {
                let mut conflicts = self.repo_command();
                conflicts.args(["diff", "--name-only", "--diff-filter=U"]);
                let files = run_text(conflicts, "diff --name-only")
                    .await
                    .unwrap_or_default();
                let mut abort = self.repo_command();
                abort.args(["rebase", "--abort"]);
                run(abort, "rebase --abort").await?;
                Ok(Rebase::Conflicts {
                    files: files.lines().map(str::to_owned).collect(),
                })
            }
            Err(other) => Err(other),
        }
    }
}
