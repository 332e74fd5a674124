//! A task's worktree: its diff against the base and its commit.

use crate::error::{GitError, GitResult};
use crate::git::{run, run_text};
use crate::repo::Repo;
use std::path::{Path, PathBuf};

/// The author and committer of task commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// One file in a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file's path in the repository.
    pub path: String,
    /// Lines added (`None` for a binary file).
    pub added: Option<u64>,
    /// Lines removed (`None` for a binary file).
    pub removed: Option<u64>,
}

/// A task's changes against its base commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// The unified diff as git prints it (non-UTF-8 bytes replaced).
    pub text: String,
    /// The files changed, with line counts.
    pub files: Vec<FileChange>,
}

impl Diff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A task's worktree.
#[derive(Debug, Clone)]
pub struct Worktree {
    repo: Repo,
    path: PathBuf,
    base_commit: String,
}

/// Parsed `--numstat` fields: added, removed, path.
type NumstatRecord = (Option<u64>, Option<u64>, String);

/// Makes scratch directory names unique within the process.
static SCRATCH_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Worktree {
    pub(crate) fn new(repo: Repo, path: PathBuf, base_commit: String) -> Self {
        Self {
            repo,
            path,
            base_commit,
        }
    }

    /// The worktree's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A git invocation in this worktree.
    pub(crate) fn repo_command(&self) -> tokio::process::Command {
        self.repo.command(&self.path)
    }

    /// The commit the task started from.
    pub fn base_commit(&self) -> &str {
        &self.base_commit
    }

    /// Everything in the worktree that differs from the base commit,
    /// committed or not, untracked files included (ignored files excluded).
    /// Reads through a scratch index, so the worktree's own index is left
    /// alone.
    pub async fn diff(&self) -> GitResult<Diff> {
        let base = self.base_commit.clone();
        self.diff_against(&base).await
    }

    /// What is not committed yet on the task's branch (the worktree against
    /// its `HEAD`), untracked files included.
    pub async fn uncommitted(&self) -> GitResult<Diff> {
        self.diff_against("HEAD").await
    }

    async fn diff_against(&self, revision: &str) -> GitResult<Diff> {
        let scratch = tempfile_in_git_dir(&self.repo, &self.path)?;
        let index = scratch.join("index");
        let result = self.diff_with_index(&index, revision).await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    async fn diff_with_index(&self, index: &Path, revision: &str) -> GitResult<Diff> {
        let mut read_tree = self.repo.command(&self.path);
        read_tree
            .env("GIT_INDEX_FILE", index)
            .args(["read-tree", "HEAD"]);
        run(read_tree, "read-tree").await?;
        let mut add = self.repo.command(&self.path);
        add.env("GIT_INDEX_FILE", index).args(["add", "-A"]);
        run(add, "add -A").await?;

        collect_diff(&self.repo, &self.path, Some(index), &["--cached", revision]).await
    }

    /// Commits everything in the worktree on its branch, without hooks or
    /// signing, and returns the new commit's id.
    pub async fn commit(&self, message: &str, identity: &Identity) -> GitResult<String> {
        let mut add = self.repo.command(&self.path);
        add.args(["add", "-A"]);
        run(add, "add -A").await?;
        let mut commit = self.repo.command(&self.path);
        commit
            .args(["commit", "--quiet", "--no-verify", "--file", "-"])
            .env("GIT_AUTHOR_NAME", &identity.name)
            .env("GIT_AUTHOR_EMAIL", &identity.email)
            .env("GIT_COMMITTER_NAME", &identity.name)
            .env("GIT_COMMITTER_EMAIL", &identity.email)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = commit.spawn().map_err(GitError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(message.as_bytes())
                .await
                .map_err(|source| GitError::Io {
                    context: "cannot pass the commit message to git".into(),
                    source,
                })?;
        }
        let output = child.wait_with_output().await.map_err(GitError::Spawn)?;
        if !output.status.success() {
            return Err(GitError::Failed {
                command: "commit".into(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let mut head = self.repo.command(&self.path);
        head.args(["rev-parse", "HEAD"]);
        run_text(head, "rev-parse HEAD").await
    }
}

/// Runs `git diff <range>` (through `index` when given) and parses it.
pub(crate) async fn collect_diff(
    repo: &Repo,
    dir: &Path,
    index: Option<&Path>,
    range: &[&str],
) -> GitResult<Diff> {
    let diff_args = [
        "diff",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        "--no-renames",
    ];
    let command = |extra: &[&str]| {
        let mut command = repo.command(dir);
        if let Some(index) = index {
            command.env("GIT_INDEX_FILE", index);
        }
        command.args(diff_args).args(extra).args(range);
        command
    };
    let numstat = run(command(&["--numstat", "-z"]), "diff --numstat").await?;
    let text = run(command(&[]), "diff").await?;
    Ok(Diff {
        text: String::from_utf8_lossy(&text).into_owned(),
        files: parse_numstat(&numstat)
            .into_iter()
            .map(|(added, removed, path)| FileChange {
                path,
                added,
                removed,
            })
            .collect(),
    })
}

/// A private scratch directory inside the worktree's git dir (so it is
/// on the same filesystem and never inside the working tree).
/// The file in a worktree's own git directory that git reads as its
/// excludes file there: the person's own global ignore patterns and the
/// paths left out of the worktree's changes.
pub(crate) const EXCLUDES_FILE: &str = "pushpals-excludes";

impl Repo {
    /// Leaves `paths` (relative to the worktree: what a warm cache brought,
    /// a virtual environment the repository does not ignore) out of the
    /// worktree's changes, its diffs and its commits, as if ignored. Kept
    /// in the worktree's own git directory, which no sandbox writes.
    pub fn exclude_from_changes(&self, worktree: &Path, paths: &[String]) -> GitResult<()> {
        let git_dir = self
            .worktree_git_dir(worktree)
            .ok_or_else(|| GitError::Io {
                context: format!("git does not list {} as a worktree", worktree.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
        // This file takes the place of the person's global excludes file
        // (git reads one), so that one's patterns come first.
        let mut patterns = global_excludes().unwrap_or_default();
        if !patterns.is_empty() && !patterns.ends_with('\n') {
            patterns.push('\n');
        }
        patterns.push_str("# left out of the task's changes by Push Pals\n");
        for path in paths.iter().filter(|p| !p.is_empty() && !p.contains('\n')) {
            patterns.push('/');
            patterns.push_str(&escape_pattern(path));
            patterns.push('\n');
        }
        let file = git_dir.join(EXCLUDES_FILE);
        std::fs::write(&file, patterns).map_err(|source| GitError::Io {
            context: format!("cannot write {}", file.display()),
            source,
        })
    }
}

/// Leaves `paths` (what a warm cache brought) out of a worker clone's
/// changes: added to its `.git/info/exclude`, each matched literally.
pub fn exclude_in_clone(dir: &Path, paths: &[String]) -> GitResult<()> {
    let file = dir.join(".git/info/exclude");
    let mut patterns = std::fs::read_to_string(&file).unwrap_or_default();
    if !patterns.is_empty() && !patterns.ends_with('\n') {
        patterns.push('\n');
    }
    patterns.push_str("# a warm cache's, left out of the run's changes by Push Pals\n");
    for path in paths.iter().filter(|p| !p.is_empty() && !p.contains('\n')) {
        patterns.push('/');
        patterns.push_str(&escape_pattern(path));
        patterns.push('\n');
    }
    let io = |source| GitError::Io {
        context: format!("cannot write {}", file.display()),
        source,
    };
    std::fs::create_dir_all(dir.join(".git/info")).map_err(io)?;
    std::fs::write(&file, patterns).map_err(io)
}

/// The person's global ignore patterns, where git looks when no
/// `core.excludesFile` is set.
fn global_excludes() -> Option<String> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    std::fs::read_to_string(config.join("git/ignore")).ok()
}

/// A path as a gitignore pattern that matches it literally.
fn escape_pattern(path: &str) -> String {
    let mut escaped = String::with_capacity(path.len());
    for (at, c) in path.char_indices() {
        let leading = at == 0 && matches!(c, '#' | '!');
        if leading || matches!(c, '*' | '?' | '[' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    // Trailing spaces are dropped from patterns unless escaped.
    if escaped.ends_with(' ') {
        escaped.pop();
        escaped.push_str("\\ ");
    }
    escaped
}

fn tempfile_in_git_dir(repo: &Repo, worktree: &Path) -> GitResult<PathBuf> {
    // The worktree's own git directory as the repository lists it, never
    // where its `.git` file (the sandbox's to write) points.
    let git_dir = repo
        .worktree_git_dir(worktree)
        .ok_or_else(|| GitError::Io {
            context: format!("git does not list {} as a worktree", worktree.display()),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    let n = SCRATCH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = git_dir.join(format!("pushpals-scratch-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|source| GitError::Io {
        context: format!("cannot create {}", scratch.display()),
        source,
    })?;
    Ok(scratch)
}

/// Parses `git diff --numstat -z` output.
fn parse_numstat(raw: &[u8]) -> Vec<NumstatRecord> {
    let mut files = Vec::new();
    for record in raw.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let mut parts = text.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        files.push((added.parse().ok(), removed.parse().ok(), path.to_owned()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_out_paths_become_patterns_that_match_only_them() {
        assert_eq!(escape_pattern(".venv"), ".venv");
        assert_eq!(escape_pattern("a*b?[c]\\d"), "a\\*b\\?\\[c]\\\\d");
        assert_eq!(escape_pattern("#x"), "\\#x");
        assert_eq!(escape_pattern("!x"), "\\!x");
        assert_eq!(escape_pattern("x "), "x\\ ");
    }

    #[test]
    fn numstat_counts_text_and_marks_binary() {
        let raw = b"3\t1\tsrc/lib.rs\0-\t-\timage.png\0";
        assert_eq!(
            parse_numstat(raw),
            vec![
                (Some(3), Some(1), "src/lib.rs".to_owned()),
                (None, None, "image.png".to_owned()),
            ]
        );
    }
}
