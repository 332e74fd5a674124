//! Forges: where pull requests are opened. One trait, so GitLab or Gitea
//! can follow GitHub.

mod github;

pub use github::GitHub;

use std::future::Future;
use std::pin::Pin;

/// A pull request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// The title.
    pub title: String,
    /// The description.
    pub body: String,
    /// The branch with the changes.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// Open it as a draft.
    pub draft: bool,
}

/// An opened pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPullRequest {
    /// Its web address.
    pub url: String,
    /// Its number.
    pub number: u64,
}

/// Why a pull request could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// The token is missing, refused or lacks a permission.
    #[error(
        "the forge refused the credentials ({0}); check the token in the environment variable named by [forge] token_env"
    )]
    Unauthorized(String),
    /// The forge refused the request as invalid (for example: a pull
    /// request for this branch exists already).
    #[error("the forge refused the pull request: {0}")]
    Rejected(String),
    /// The forge could not be reached or answered something unexpected.
    #[error("the forge could not be used: {0}")]
    Unavailable(String),
}

/// A boxed future, so forges can sit behind `Arc<dyn Forge>`.
pub type ForgeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ForgeError>> + Send + 'a>>;

/// A code forge that opens pull requests.
pub trait Forge: Send + Sync + std::fmt::Debug {
    /// The forge's name, for events.
    fn name(&self) -> &'static str;

    /// Opens a pull request.
    fn open_pull_request<'a>(
        &'a self,
        request: &'a PullRequest,
    ) -> ForgeFuture<'a, OpenedPullRequest>;
}
