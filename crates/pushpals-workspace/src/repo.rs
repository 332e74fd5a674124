//! The person's repository.
//!
//! Over 400 lines: the person's repository as Push Pals reads it (opening, identity, worktree bookkeeping and the git calls that name each worktree's own directory); overlays, history and merges are modules of their own.

use crate::error::{GitError, GitResult};
use crate::git::{git, run, run_text};
use crate::worktree::{Diff, Worktree, collect_diff};
use std::path::{Path, PathBuf};

/// A git repository Push Pals serves. Only read from; tasks write in
/// worktrees of their own.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    /// The directory git keeps what all worktrees share in (refs, objects,
    /// each linked worktree's own directory under `worktrees/`).
    common_dir: PathBuf,
    filter_overrides: Vec<String>,
    /// Serializes git's worktree bookkeeping (add, remove, prune, list):
    /// a `worktree add` running beside another reads its half-written
    /// entry and fails.
    worktrees: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Task worktrees are overlays over a shared pristine tree, where the
    /// machine can mount them.
    pub(crate) overlays: Option<crate::Overlays>,
}

impl Repo {
    /// Opens the repository containing `path`. Fails with
    /// [`GitError::NotARepo`] or [`GitError::NoCommits`].
    pub async fn open(path: &Path) -> GitResult<Self> {
        let not_a_repo = || GitError::NotARepo {
            path: path.to_path_buf(),
        };
        if !path.is_dir() {
            return Err(GitError::NoSuchDir {
                path: path.to_path_buf(),
            });
        }
        let mut probe = git(path, &[]);
        probe.args(["rev-parse", "--show-toplevel"]);
        let root = match run_text(probe, "rev-parse").await {
            Ok(root) if !root.is_empty() => PathBuf::from(root),
            Ok(_) | Err(GitError::Failed { .. }) => return Err(not_a_repo()),
            Err(other) => return Err(other),
        };
        let filter_overrides = filter_overrides(&root).await?;
        let mut common = git(&root, &[]);
        common.args(["rev-parse", "--path-format=absolute", "--git-common-dir"]);
        let common_dir = match run_text(common, "rev-parse --git-common-dir").await {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            Ok(_) | Err(GitError::Failed { .. }) => return Err(not_a_repo()),
            Err(other) => return Err(other),
        };
        let repo = Self {
            root,
            common_dir,
            filter_overrides,
            worktrees: std::sync::Arc::default(),
            overlays: None,
        };
        if repo.head_commit().await.is_err() {
            return Err(GitError::NoCommits {
                path: repo.root.clone(),
            });
        }
        Ok(repo)
    }

    /// The repository's `.git` directory (shared by its worktrees), when it
    /// is a directory at the top of the working tree.
    pub fn git_common_dir(&self) -> Option<PathBuf> {
        let dir = self.root.join(".git");
        dir.is_dir().then_some(dir)
    }

    /// The top of the working tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Holds git's worktree bookkeeping for the caller (see `worktrees`).
    pub(crate) async fn worktree_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.worktrees.lock().await
    }

    /// A git invocation in `dir`: the repository's top, or a task's
    /// worktree. A worktree's `.git` file is the sandbox's to write (it
    /// could point git at the person's own branch), so git is told where
    /// the worktree's own directory is, from the repository's bookkeeping,
    /// which no sandbox can write; a worktree git does not list there gets
    /// a directory that does not exist, and the command fails.
    pub(crate) fn command(&self, dir: &Path) -> tokio::process::Command {
        let mut command = git(dir, &self.filter_overrides);
        if dir != self.root {
            let git_dir = self.worktree_git_dir(dir).unwrap_or_else(|| {
                tracing::warn!(worktree = %dir.display(), "git does not list this worktree");
                self.common_dir
                    .join("worktrees/.pushpals-not-a-listed-worktree")
            });
            let excludes = git_dir.join(crate::worktree::EXCLUDES_FILE);
            if excludes.is_file() {
                command
                    .arg("-c")
                    .arg(format!("core.excludesFile={}", excludes.display()));
            }
            command
                .arg("--git-dir")
                .arg(git_dir)
                .arg("--work-tree")
                .arg(dir);
        }
        command
    }

    /// The directory git keeps `worktree`'s own state in (its `HEAD`,
    /// index): the entry under `worktrees/` whose `gitdir` names
    /// `worktree/.git`.
    pub(crate) fn worktree_git_dir(&self, worktree: &Path) -> Option<PathBuf> {
        let wanted = std::fs::canonicalize(worktree).ok()?;
        let names = |entry: &Path| {
            let recorded = std::fs::read_to_string(entry.join("gitdir")).ok()?;
            let recorded = Path::new(recorded.trim());
            let names_it = recorded.file_name() == Some(std::ffi::OsStr::new(".git"))
                && recorded
                    .parent()
                    .and_then(|parent| std::fs::canonicalize(parent).ok())
                    .is_some_and(|parent| parent == wanted);
            names_it.then(|| entry.to_path_buf())
        };
        let entries = self.common_dir.join("worktrees");
        // git names the entry after the worktree's directory, with a
        // number added when that name is taken.
        if let Some(found) = worktree
            .file_name()
            .and_then(|name| names(&entries.join(name)))
        {
            return Some(found);
        }
        std::fs::read_dir(&entries)
            .ok()?
            .flatten()
            .find_map(|entry| names(&entry.path()))
    }

    /// The commit `HEAD` points at.
    pub async fn head_commit(&self) -> GitResult<String> {
        let mut command = self.command(&self.root);
        command.args(["rev-parse", "--verify", "HEAD^{commit}"]);
        run_text(command, "rev-parse HEAD").await
    }

    /// The current branch's name, or `None` on a detached HEAD.
    pub async fn current_branch(&self) -> GitResult<Option<String>> {
        let mut command = self.command(&self.root);
        command.args(["symbolic-ref", "--quiet", "--short", "HEAD"]);
        match run_text(command, "symbolic-ref").await {
            Ok(name) => Ok(Some(name)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// A file's content at a commit, or `None` when it does not exist there.
    pub async fn file_at(&self, commit: &str, relative: &str) -> GitResult<Option<Vec<u8>>> {
        let mut command = self.command(&self.root);
        command.args(["cat-file", "blob", &format!("{commit}:{relative}")]);
        match run(command, "cat-file").await {
            Ok(content) => Ok(Some(content)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Makes a worktree at `worktree_path` on a new `branch` starting at
    /// `base_commit`: an overlay over the base commit's pristine tree where
    /// the machine can mount one, else a checkout. The person's checkout
    /// and index are not touched.
    pub async fn add_worktree(
        &self,
        worktree_path: &Path,
        branch: &str,
        base_commit: &str,
    ) -> GitResult<Worktree> {
        if let Some(parent) = worktree_path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| GitError::Io {
                context: format!("cannot create {}", parent.display()),
                source,
            })?;
        }
        let pristine = match &self.overlays {
            Some(overlays) => Some(overlays.pristine(self, base_commit).await?),
            None => None,
        };
        let _one_at_a_time = self.worktrees.lock().await;
        let mut command = self.command(&self.root);
        command.args(["worktree", "add", "--quiet"]);
        if pristine.is_some() {
            // Locked: a prune while the overlay is not mounted (after a
            // reboot) must not drop the entry.
            command.args(["--no-checkout", "--lock"]);
        }
        command
            .args(["-b", branch])
            .arg(worktree_path)
            .arg(base_commit);
        run(command, "worktree add").await?;
        if let (Some(overlays), Some(pristine)) = (&self.overlays, pristine) {
            self.overlay_worktree(overlays, &pristine, worktree_path)
                .await?;
        }
        Ok(Worktree::new(
            self.clone(),
            worktree_path.to_path_buf(),
            base_commit.to_owned(),
        ))
    }

    /// Clears what a `worktree add` cut short (a killed server) may have
    /// left of a task's worktree that was never recorded: the directory at
    /// `worktree_path`, git's entry for it, and `branch` (made by that
    /// same `worktree add`, so it holds no work). Call it only for a task
    /// that has no worktree yet.
    pub async fn clear_unrecorded_worktree(
        &self,
        worktree_path: &Path,
        branch: &str,
    ) -> GitResult<()> {
        let _one_at_a_time = self.worktrees.lock().await;
        self.dismantle(worktree_path)?;
        if worktree_path.exists() {
            let mut command = self.command(&self.root);
            command
                .args(["worktree", "remove", "--force", "--force"])
                .arg(worktree_path);
            if run(command, "worktree remove").await.is_err() {
                std::fs::remove_dir_all(worktree_path).map_err(|source| GitError::Io {
                    context: format!("cannot remove {}", worktree_path.display()),
                    source,
                })?;
            }
        }
        let mut prune = self.command(&self.root);
        prune.args(["worktree", "prune"]);
        run(prune, "worktree prune").await?;
        if self.branch_commit(branch).await?.is_some() {
            let mut delete = self.command(&self.root);
            delete.args(["branch", "-D", "--quiet", branch]);
            run(delete, "branch -D").await?;
        }
        Ok(())
    }

    /// Removes git's entries of worktrees whose making was cut short (a
    /// killed process left `commondir`, `gitdir` or `HEAD` missing or
    /// empty): while one is there, git refuses every `worktree add`. Only
    /// entries named in `ours` are touched. Returns the names removed.
    pub async fn repair_worktree_entries(&self, ours: &[String]) -> GitResult<Vec<String>> {
        let Some(common) = self.git_common_dir() else {
            return Ok(Vec::new());
        };
        let _one_at_a_time = self.worktrees.lock().await;
        let mut removed = Vec::new();
        for name in ours {
            let entry = common.join("worktrees").join(name);
            if !entry.is_dir() {
                continue;
            }
            let broken = ["commondir", "gitdir", "HEAD"].iter().any(|file| {
                std::fs::read(entry.join(file)).map_or(true, |bytes| bytes.trim_ascii().is_empty())
            });
            if broken {
                std::fs::remove_dir_all(&entry).map_err(|source| GitError::Io {
                    context: format!("cannot remove {}", entry.display()),
                    source,
                })?;
                removed.push(name.clone());
            }
        }
        if !removed.is_empty() {
            let mut prune = self.command(&self.root);
            prune.args(["worktree", "prune"]);
            run(prune, "worktree prune").await?;
        }
        Ok(removed)
    }

    /// Opens an existing task worktree.
    pub fn worktree(&self, worktree_path: &Path, base_commit: &str) -> Worktree {
        Worktree::new(
            self.clone(),
            worktree_path.to_path_buf(),
            base_commit.to_owned(),
        )
    }

    /// Removes a task's worktree (if present) and keeps its branch.
    pub async fn remove_worktree_only(&self, worktree_path: &Path) -> GitResult<()> {
        let _one_at_a_time = self.worktrees.lock().await;
        self.dismantle(worktree_path)?;
        if worktree_path.exists() {
            let mut command = self.command(&self.root);
            command
                .args(["worktree", "remove", "--force", "--force"])
                .arg(worktree_path);
            run(command, "worktree remove").await?;
        }
        let mut prune = self.command(&self.root);
        prune.args(["worktree", "prune"]);
        run(prune, "worktree prune").await?;
        Ok(())
    }

    /// The diff of a branch's head against `base_commit` (for tasks whose
    /// worktree is gone).
    pub async fn branch_diff(&self, branch: &str, base_commit: &str) -> GitResult<Diff> {
        let head = format!("refs/heads/{branch}");
        collect_diff(self, &self.root, None, &[base_commit, &head]).await
    }

    /// Removes a task's worktree (if present) and deletes its branch (if
    /// present).
    pub async fn remove_worktree(&self, worktree_path: &Path, branch: &str) -> GitResult<()> {
        self.remove_worktree_only(worktree_path).await?;
        let mut exists = self.command(&self.root);
        exists.args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ]);
        if run(exists, "rev-parse").await.is_ok() {
            let mut delete = self.command(&self.root);
            delete.args(["branch", "-D", "--quiet", branch]);
            run(delete, "branch -D").await?;
        }
        Ok(())
    }

    /// Whether `commit` is already contained in `branch` (merged into it).
    pub async fn is_merged(&self, commit: &str, branch: &str) -> GitResult<bool> {
        let mut command = self.command(&self.root);
        command.args([
            "merge-base",
            "--is-ancestor",
            commit,
            &format!("refs/heads/{branch}"),
        ]);
        match run(command, "merge-base").await {
            Ok(_) => Ok(true),
            Err(GitError::Failed { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Deletes a branch that is not checked out anywhere; `false` when it
    /// does not exist.
    pub async fn delete_branch(&self, branch: &str) -> GitResult<bool> {
        if self.branch_commit(branch).await?.is_none() {
            return Ok(false);
        }
        let mut delete = self.command(&self.root);
        delete.args(["branch", "-D", "--quiet", branch]);
        run(delete, "branch -D").await?;
        Ok(true)
    }

    /// The full message of `commit`.
    pub async fn commit_message(&self, commit: &str) -> GitResult<String> {
        let mut command = self.command(&self.root);
        command.args(["log", "-1", "--format=%B", commit, "--"]);
        run_text(command, "log").await
    }

    /// The commit a branch points at, or `None` when it does not exist.
    pub async fn branch_commit(&self, branch: &str) -> GitResult<Option<String>> {
        let mut command = self.command(&self.root);
        command.args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}^{{commit}}"),
        ]);
        match run_text(command, "rev-parse").await {
            Ok(sha) => Ok(Some(sha)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// `filter.<driver>.{clean,smudge,process}` set to empty for every driver
/// the repository's config names, so attributes cannot make git run them.
async fn filter_overrides(root: &Path) -> GitResult<Vec<String>> {
    let mut command = git(root, &[]);
    command.args(["config", "--name-only", "--get-regexp", r"^filter\."]);
    let names = match run_text(command, "config").await {
        Ok(names) => names,
        // Exit status 1: no such keys.
        Err(GitError::Failed { .. }) => return Ok(Vec::new()),
        Err(other) => return Err(other),
    };
    let mut overrides = Vec::new();
    for name in names.lines() {
        if let Some(driver) = name
            .strip_prefix("filter.")
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(driver, _)| driver)
        {
            for key in ["clean", "smudge", "process"] {
                let setting = format!("filter.{driver}.{key}=");
                if !overrides.contains(&setting) {
                    overrides.push(setting);
                }
            }
            overrides.push(format!("filter.{driver}.required=false"));
        }
    }
    overrides.dedup();
    Ok(overrides)
}
