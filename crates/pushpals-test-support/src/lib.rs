//! Shared fixtures for Push Pals tests: temporary git repositories and a
//! scripted model server ([`model_server`]).
//!
//! This crate is only ever a dev-dependency; it panics freely on setup
//! failures because a broken fixture should stop the test at once.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agents;
mod image;
pub mod model_server;
mod postgres_cluster;
pub mod secret_corpus;
mod serve_process;

pub use agents::installed_agent;
pub use image::busybox_image;

pub use model_server::{Recorded, Reply, ScriptedModel};
pub use postgres_cluster::{PgDatabase, postgres_database};
pub use serve_process::ServeProcess;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway git repository with one commit on `main`:
/// `src/lib.rs` holding `pub fn foo() {}` and a `README.md`.
pub struct TempRepo {
    _dir: tempfile::TempDir,
    /// The repository's working tree.
    pub path: PathBuf,
}

impl Default for TempRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TempRepo {
    /// Makes the repository.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir_all(path.join("src")).unwrap();
        let repo = Self { _dir: dir, path };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.write("src/lib.rs", "pub fn foo() {}\n");
        repo.write("README.md", "# demo\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// Makes an empty repository: `git init`, no commit.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir_all(&path).unwrap();
        let repo = Self { _dir: dir, path };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// Writes a file relative to the working tree.
    pub fn write(&self, relative: &str, content: &str) {
        let file = self.path.join(relative);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }

    /// Reads a file relative to the working tree.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path.join(relative)).unwrap()
    }

    /// Commits everything with a message.
    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Runs git in the repository with a fixed identity and no global
    /// config, and returns its trimmed stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args)
    }
}

/// Runs git in `dir` (see [`TempRepo::git`]).
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Person")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test Person")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
