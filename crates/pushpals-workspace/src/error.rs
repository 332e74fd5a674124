//! Git errors.

use std::path::PathBuf;

/// What can go wrong with git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path does not exist or is not a directory.
    #[error(
        "{path} does not exist or is not a directory: pass the path of a git checkout with --repo"
    )]
    NoSuchDir {
        /// The path given.
        path: PathBuf,
    },
    /// The path is not inside a git repository.
    #[error("{path} is not a git repository: run `git init` there or pass another --repo")]
    NotARepo {
        /// The path given.
        path: PathBuf,
    },
    /// The repository has no commit to start tasks from.
    #[error("the repository at {path} has no commits yet: make a first commit, then start again")]
    NoCommits {
        /// The repository.
        path: PathBuf,
    },
    /// The `git` program could not be started.
    #[error("cannot run git: {0}; is git installed and on PATH?")]
    Spawn(#[source] std::io::Error),
    /// A git command failed.
    #[error("git {command} failed ({status}): {stderr}")]
    Failed {
        /// The subcommand and its arguments.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file operation around git failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A clone URL that cannot be used.
    #[error("cannot clone {url}: {why}")]
    BadUrl {
        /// The URL, credentials hidden.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A clone failed.
    #[error("cannot clone {url}: {problem}")]
    Clone {
        /// The URL, without credentials.
        url: String,
        /// Why.
        problem: crate::clone::CloneProblem,
    },
}

impl GitError {
    /// Whether git failed because the remote wanted credentials it did not
    /// get, or refused them.
    pub fn needs_credentials(&self) -> bool {
        match self {
            Self::Failed { stderr, .. } => {
                crate::clone::classify(stderr, None) == crate::clone::CloneProblem::NeedsCredentials
            }
            Self::Clone { problem, .. } => *problem == crate::clone::CloneProblem::NeedsCredentials,
            _ => false,
        }
    }
}

/// Shorthand for git results.
pub type GitResult<T> = Result<T, GitError>;
