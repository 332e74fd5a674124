//! Reading a commit's tree and the repository's history, for the scanner.

use crate::error::{GitError, GitResult};
use crate::git::{run, run_text};
use crate::repo::Repo;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// One commit's patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPatch {
    /// The commit.
    pub commit: String,
    /// Its unified diff against its first parent (no context lines).
    pub patch: String,
}

impl Repo {
    /// Writes the files of `commit` into `dest` (an empty directory):
    /// exactly what is committed, nothing of the working tree.
    pub async fn export_tree(&self, commit: &str, dest: &Path) -> GitResult<()> {
        let mut archive = self.command(self.root());
        archive.args(["archive", "--format=tar", commit]);
        let tar_bytes = run(archive, "archive").await?;
        let mut tar = tokio::process::Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(dest)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::Spawn)?;
        if let Some(mut stdin) = tar.stdin.take() {
            stdin.write_all(&tar_bytes).await.map_err(GitError::Spawn)?;
        }
        let output = tar.wait_with_output().await.map_err(GitError::Spawn)?;
        if !output.status.success() {
            return Err(GitError::Failed {
                command: "tar -x".into(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }

    /// The patches of the last `max` commits reachable from `commit`,
    /// newest first.
    pub async fn recent_patches(&self, commit: &str, max: usize) -> GitResult<Vec<CommitPatch>> {
        let mut log = self.command(self.root());
        log.args([
            "log",
            "-p",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--first-parent",
            "--format=%x00commit %H",
            &format!("--max-count={max}"),
            commit,
        ]);
        let text = String::from_utf8_lossy(&run(log, "log -p").await?).into_owned();
        Ok(text
            .split("\0commit ")
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                let (commit, patch) = part.split_once('\n').unwrap_or((part, ""));
                CommitPatch {
                    commit: commit.trim().to_owned(),
                    patch: patch.to_owned(),
                }
            })
            .collect())
    }

    /// How many of the last `max` commits touched each file.
    pub async fn churn(&self, commit: &str, max: usize) -> GitResult<HashMap<String, u32>> {
        let mut log = self.command(self.root());
        log.args([
            "log",
            "--name-only",
            "--format=",
            "--no-renames",
            &format!("--max-count={max}"),
            commit,
        ]);
        let text = run_text(log, "log --name-only").await?;
        let mut counts = HashMap::new();
        for file in text.lines().filter(|l| !l.trim().is_empty()) {
            *counts.entry(file.to_owned()).or_insert(0) += 1;
        }
        Ok(counts)
    }
}
