//! Where a new task starts: the base branch fetched first (see
//! [`crate::base_fetch`] for why and how fetches take turns).

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use crate::repositories::ServedRepo;
use crate::settings::FetchFailure;
use pushpals_core::payload::{BaseFetchFailed, BaseFetched, EventPayload};
use pushpals_core::{Actor, NewEvent, TaskId};
use pushpals_workspace::Repo;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The first wait before fetching again; it doubles up to a minute.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// A failed fetch of `remote`'s `branch`, with what git said.
fn failed(remote: &str, branch: &str, error: String) -> BaseFetchFailed {
    BaseFetchFailed {
        remote: remote.to_owned(),
        branch: branch.to_owned(),
        error,
        ..BaseFetchFailed::default()
    }
}

impl Lifecycle {
    /// The commit a new task starts from, fetched as the module says; each
    /// fetch, failure and choice is an event of the task.
    pub(crate) async fn fresh_base(
        &self,
        served: &ServedRepo,
        task_id: &TaskId,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<String> {
        let head = served
            .repo
            .head_commit()
            .await
            .map_err(|e| Stop::Failed(format!("cannot read the repository's HEAD: {e}")))?;
        let delivery = self.settings().delivery.clone();
        if !delivery.fetch_before_task {
            return Ok(head);
        }
        let target = self
            .delivery
            .target(served)
            .await
            .map_err(|e| Stop::Failed(format!("cannot read the repository's remotes: {e}")))?;
        let Some(target) = target else {
            return Ok(head);
        };
        let (remote, branch) = (target.remote.clone(), target.base.clone());
        let started = Instant::now();
        let limit = Duration::from_secs(delivery.fetch_wait_secs);
        let mut wait = FIRST_RETRY;
        let mut cancel = cancel.clone();
        loop {
            let error = match self.fetch_for_task(served, &target).await {
                Ok(fetched) => {
                    let (start, why) = choose_base(&served.repo, &head, &fetched).await;
                    self.note_base(
                        task_id,
                        &BaseFetched {
                            remote: remote.clone(),
                            branch: branch.clone(),
                            fetched,
                            head: head.clone(),
                            start_commit: start.clone(),
                            why,
                        },
                    )
                    .await?;
                    return Ok(start);
                }
                Err(error) => error,
            };
            match delivery.on_fetch_failure {
                FetchFailure::LastFetched => {
                    let last = served
                        .repo
                        .last_fetched_base(&remote, &branch)
                        .await
                        .ok()
                        .flatten();
                    let (start, why) = match &last {
                        Some(last) => choose_base(&served.repo, &head, last).await,
                        None => (head.clone(), "never fetched: the local HEAD".to_owned()),
                    };
                    self.note_base(
                        task_id,
                        &BaseFetchFailed {
                            fallback: Some("last_fetched".into()),
                            start_commit: Some(start.clone()),
                            why: Some(why),
                            ..failed(&remote, &branch, error)
                        },
                    )
                    .await?;
                    return Ok(start);
                }
                FetchFailure::Wait if started.elapsed() + wait > limit => {
                    return Err(Stop::Failed(format!(
                        "cannot fetch {remote}/{branch} to start from its latest base \
                         (tried for {} s): {error}. Check the remote and its credentials, \
                         or set [delivery] on_fetch_failure = \"last_fetched\" to start from \
                         the base fetched last time",
                        started.elapsed().as_secs()
                    )));
                }
                FetchFailure::Wait => {
                    self.note_base(
                        task_id,
                        &BaseFetchFailed {
                            retry_in_secs: Some(wait.as_secs()),
                            ..failed(&remote, &branch, error)
                        },
                    )
                    .await?;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = cancel.changed() => return Err(Stop::Superseded),
                    }
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Fetches the base with the push token when one is configured and
    /// set (else git's own credential helpers apply; a push names the
    /// missing variable); the error as text without credentials.
    async fn fetch_for_task(
        &self,
        served: &ServedRepo,
        target: &crate::delivery::route::DeliveryTarget,
    ) -> Result<String, String> {
        let (remote, branch) = (target.remote.as_str(), target.base.as_str());
        let credential = self
            .delivery
            .remote_credential(served, target)
            .ok()
            .flatten();
        let fetched = served
            .base_fetches
            .fetch(&served.repo, remote, branch, credential.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        // A clone is nobody's checkout: its branch follows the remote, so
        // scans and `repo list` see the latest base.
        if served.record.is_clone()
            && let Err(error) = served.repo.follow_branch(branch, &fetched).await
        {
            tracing::warn!(repo = served.name(), %error, "cannot move the clone's branch to the fetched base");
        }
        Ok(fetched)
    }
}

/// The local HEAD when it holds `fetched`, else `fetched`; and why.
async fn choose_base(repo: &Repo, head: &str, fetched: &str) -> (String, String) {
    if head == fetched {
        return (head.to_owned(), "the local HEAD is the remote base".into());
    }
    if repo.is_ancestor(fetched, head).await.unwrap_or(false) {
        return (
            head.to_owned(),
            "the local HEAD is ahead of the remote base".into(),
        );
    }
    if repo.is_ancestor(head, fetched).await.unwrap_or(false) {
        return (
            fetched.to_owned(),
            "the remote base is ahead of the local HEAD".into(),
        );
    }
    (
        head.to_owned(),
        "the local HEAD and the remote base diverged: the local HEAD, rebased onto the \
             remote base before a push"
            .into(),
    )
}

impl Lifecycle {
    async fn note_base<T: EventPayload>(&self, task_id: &TaskId, payload: &T) -> StepResult<()> {
        let event = NewEvent::typed(Some(task_id), Actor::Orchestrator, payload)
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(())
    }
}
