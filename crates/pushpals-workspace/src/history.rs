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

    /// Files that differ between two commits (added, changed or deleted).
    pub async fn changed_files(&self, from: &str, to: &str) -> GitResult<Vec<String>> {
        let mut diff = self.command(self.root());
        diff.args(["diff", "--name-only", "--no-renames", "-z", from, to]);
        let bytes = run(diff, "diff --name-only").await?;
        Ok(bytes
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `commit`.
    pub async fn is_ancestor(&self, ancestor: &str, commit: &str) -> GitResult<bool> {
        let mut check = self.command(self.root());
        check.args(["merge-base", "--is-ancestor", ancestor, commit]);
        match run(check, "merge-base").await {
            Ok(_) => Ok(true),
            Err(GitError::Failed { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The contents of `paths` at `commit` (`None` for a path that is not
    /// a file there), read in one `git cat-file --batch`.
    pub async fn read_at(
        &self,
        commit: &str,
        paths: &[String],
    ) -> GitResult<Vec<(String, Option<Vec<u8>>)>> {
        let mut batch = self.command(self.root());
        batch
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = batch.spawn().map_err(GitError::Spawn)?;
        let mut input = String::new();
        for path in paths {
            input.push_str(&format!("{commit}:{path}\n"));
        }
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| GitError::Spawn(std::io::Error::other("no stdin")))?;
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
        let output = child.wait_with_output().await.map_err(GitError::Spawn)?;
        let _ = writer.await;
        let mut out = Vec::new();
        let mut rest: &[u8] = &output.stdout;
        for path in paths {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                break;
            };
            let header = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = &rest[end + 1..];
            let mut fields = header.split(' ');
            let (_, kind, size) = (fields.next(), fields.next(), fields.next());
            match (kind, size.and_then(|s| s.parse::<usize>().ok())) {
                (Some(kind), Some(size)) if rest.len() > size => {
                    let content = rest[..size].to_vec();
                    rest = &rest[size + 1..];
                    out.push((path.clone(), (kind == "blob").then_some(content)));
                }
                _ => out.push((path.clone(), None)),
            }
        }
        Ok(out)
    }

    /// Every file of `commit`, by path.
    pub async fn files_at(&self, commit: &str) -> GitResult<Vec<String>> {
        let mut list = self.command(self.root());
        list.args(["ls-tree", "-r", "-z", "--name-only", commit]);
        let bytes = run(list, "ls-tree").await?;
        Ok(bytes
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// The blob ids of those of `names` that are files at the top of
    /// `commit`, by name (a blob id names its content).
    pub async fn top_level_blobs(
        &self,
        commit: &str,
        names: &[&str],
    ) -> GitResult<Vec<(String, String)>> {
        let mut list = self.command(self.root());
        list.args(["ls-tree", "-z", commit, "--"]).args(names);
        let bytes = run(list, "ls-tree").await?;
        Ok(bytes
            .split(|b| *b == 0)
            .filter_map(|line| {
                let line = String::from_utf8_lossy(line);
                let (meta, name) = line.split_once('\t')?;
                let mut fields = meta.split(' ');
                let (_, kind, id) = (fields.next()?, fields.next()?, fields.next()?);
                (kind == "blob").then(|| (name.to_owned(), id.to_owned()))
            })
            .collect())
    }

    /// The patches of the commits after `from` up to `to`, newest first.
    pub async fn patches_between(&self, from: &str, to: &str) -> GitResult<Vec<CommitPatch>> {
        self.recent_patches(&format!("{from}..{to}"), 10_000).await
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
