//! A run's artifacts on a worker host: the worker takes them from its
//! clone the way this machine takes a task's (`crate::artifacts`), sends
//! each file's bytes, checked here against its SHA-256 and kept by it, and
//! then says which it took; each is read and described here.

use crate::artifacts::{
    MAX_ARTIFACT_BYTES, MAX_ARTIFACTS, MAX_TASK_ARTIFACT_BYTES, Taken, artifact_patterns,
    is_sha256, take,
};
use crate::lifecycle::{StepResult, Stop};
use pushpals_core::payload::{ArtifactPublished, ArtifactRefused};
use pushpals_core::{Actor, NewEvent, TaskId};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// [`take`] for a worker host: the files taken (`path`, `sha256`) and
/// refused (`path`, `reason`).
pub(crate) fn take_from(
    worktree: &Path,
    patterns: &[String],
    store: &Path,
) -> Result<crate::worker_host::TakenArtifacts, String> {
    let set = artifact_patterns(patterns)?;
    let mut taken = Vec::new();
    let mut refused = Vec::new();
    for one in take(worktree, &set, store) {
        match one {
            Taken::Published { path, sha256, .. } => taken.push((path, sha256)),
            Taken::Refused { path, reason } => refused.push((path, reason)),
        }
    }
    Ok((taken, refused))
}

/// Records the artifacts a worker took from a run's clone: each file it
/// sent (its bytes are in `dir` by SHA-256, checked on arrival) is read
/// and described here; one it names but did not send, or that `patterns`
/// do not match, is refused.
pub(crate) async fn publish_sent(
    store: &pushpals_store::Store,
    dir: PathBuf,
    task_id: &TaskId,
    worker: &str,
    patterns: &[String],
    report: pushpals_core::worker_wire::ArtifactsReport,
) -> StepResult<()> {
    let set = artifact_patterns(patterns).map_err(Stop::Failed)?;
    let mut events = Vec::new();
    let mut total = 0u64;
    let refuse = |path: String, reason: String| {
        NewEvent::typed(
            Some(task_id),
            Actor::Orchestrator,
            &ArtifactRefused { path, reason },
        )
    };
    if let Some(error) = report.error {
        events.push(refuse(
            patterns.join(", "),
            format!("on worker {worker}: {error}"),
        ));
    }
    for (path, reason) in report.refused {
        events.push(refuse(path, format!("on worker {worker}: {reason}")));
    }
    for sent in report.taken.into_iter().take(MAX_ARTIFACTS) {
        if !set.is_match(&sent.path) || artifact_patterns(std::slice::from_ref(&sent.path)).is_err()
        {
            events.push(refuse(
                sent.path,
                format!("worker {worker} named a file `[checks] artifacts` does not"),
            ));
            continue;
        }
        let stored = dir.join(sent.sha256.to_ascii_lowercase());
        let bytes = match std::fs::read(&stored) {
            Ok(bytes) if is_sha256(&sent.sha256) => bytes,
            _ => {
                events.push(refuse(
                    sent.path,
                    format!("worker {worker} did not send it"),
                ));
                continue;
            }
        };
        let size = bytes.len() as u64;
        if total + size > MAX_TASK_ARTIFACT_BYTES {
            events.push(refuse(
                sent.path,
                format!("the task's artifacts would pass {MAX_TASK_ARTIFACT_BYTES} bytes in all"),
            ));
            continue;
        }
        total += size;
        let (kind, summary) = crate::artifact_summary::describe(&sent.path, &bytes);
        events.push(NewEvent::typed(
            Some(task_id),
            Actor::Orchestrator,
            &ArtifactPublished {
                path: sent.path,
                sha256: sent.sha256.to_ascii_lowercase(),
                bytes: size,
                kind: kind.to_owned(),
                summary,
            },
        ));
    }
    crate::artifacts::append_all(store, events).await
}

/// Keeps one artifact file a worker sent under its SHA-256, after
/// checking the digest and the size.
pub(crate) fn keep_sent(dir: &Path, sha256: &str, bytes: &[u8]) -> Result<(), String> {
    if !is_sha256(sha256) {
        return Err(format!("{sha256:?} is not a SHA-256 in hex"));
    }
    if bytes.len() as u64 > MAX_ARTIFACT_BYTES {
        return Err(format!(
            "an artifact is at most {MAX_ARTIFACT_BYTES} bytes, not {}",
            bytes.len()
        ));
    }
    let digest = hex::encode(Sha256::digest(bytes));
    if !digest.eq_ignore_ascii_case(sha256) {
        return Err(format!("the bytes sent are {digest}, not {sha256}"));
    }
    let stored = dir.join(&digest);
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            if stored.exists() {
                return Ok(());
            }
            let partial = dir.join(format!(".{digest}.partial"));
            std::fs::write(&partial, bytes)?;
            std::fs::rename(&partial, &stored)
        })
        .map_err(|e| format!("cannot keep it: {e}"))
}

impl crate::orchestrator::Orchestrator {
    /// One artifact file worker `name` sent for the run of `task` it holds
    /// under `lease`, kept by its SHA-256 in the task's artifacts.
    pub fn worker_artifact(
        &self,
        name: &str,
        task: &str,
        lease: u64,
        sha256: &str,
        bytes: &[u8],
    ) -> crate::OrchestratorResult<Result<(), crate::DispatchError>> {
        if let Err(refused) = self.dispatch.base_worktree(name, task, lease) {
            return Ok(Err(refused));
        }
        let id = TaskId::parse(task)
            .map_err(|e| crate::OrchestratorError::InvalidInput(format!("{task:?}: {e}")))?;
        let dir = crate::lifecycle::artifacts_dir(&self.worktrees_dir, &id);
        Ok(keep_sent(&dir, sha256, bytes).map_err(crate::DispatchError::BadInput))
    }
}
