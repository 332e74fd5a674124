//! Where a new task starts: before it, the base branch is fetched from the
//! delivery remote (the orchestrator's git, with the person's credentials;
//! never a sandbox), so a task starts from the remote's latest base rather
//! than a checkout that may be days behind. A repository without that
//! remote starts from its HEAD, as before.
//!
//! The local HEAD still wins when it holds the remote base (it is the same,
//! or ahead with the person's unpushed commits, or diverged from it):
//! delivery rebases onto the remote base before any push.

use std::time::Instant;

/// Fetches of a base take turns: two `git fetch`es updating one
/// remote-tracking ref at once make one fail on the ref's lock (tasks
/// started together, a push beside a task start). A fetch that began after
/// a caller asked is as fresh as that caller needs: it serves the callers
/// that waited for it instead of fetching again.
#[derive(Default)]
pub(crate) struct BaseFetches(tokio::sync::Mutex<Option<Fetched>>);

struct Fetched {
    remote: String,
    branch: String,
    commit: String,
    started: Instant,
}

impl BaseFetches {
    /// The commit `remote`'s `branch` points at, fetched since this call
    /// began (with `credential` for HTTPS remotes when given).
    pub(crate) async fn fetch(
        &self,
        repo: &pushpals_workspace::Repo,
        remote: &str,
        branch: &str,
        credential: Option<&pushpals_workspace::HttpCredential>,
    ) -> pushpals_workspace::GitResult<String> {
        let asked = Instant::now();
        let mut last = self.0.lock().await;
        if let Some(fetched) = last
            .as_ref()
            .filter(|f| f.remote == remote && f.branch == branch && f.started >= asked)
        {
            return Ok(fetched.commit.clone());
        }
        let started = Instant::now();
        let commit = repo.fetch_base(remote, branch, credential).await?;
        *last = Some(Fetched {
            remote: remote.to_owned(),
            branch: branch.to_owned(),
            commit: commit.clone(),
            started,
        });
        Ok(commit)
    }
}
