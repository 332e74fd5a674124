//! A task's artifacts: files its checks leave that a person wants to see
//! (test reports, coverage, screenshots), named in `pushpals.toml`
//! (`[checks] artifacts = ["target/nextest/junit.xml", "screenshots/*.png"]`).
//! After the checks, whether they passed or not, each file that matches is
//! read from the worktree beneath it and never through a link, stored by
//! its SHA-256 under the data directory, and recorded in the task's events
//! with a summary (a JUnit report's failures first, coverage as a figure).
//! What cannot be taken (a link, a file over the limit) is recorded too.

use crate::lifecycle::{StepResult, Stop};
use crate::orchestrator::Orchestrator;
use globset::{Glob, GlobSet, GlobSetBuilder};
use pushpals_agent::tools::confine::Root;
use pushpals_core::payload::{ArtifactPublished, ArtifactRefused};
use pushpals_core::{Actor, NewEvent, TaskId};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

/// The largest artifact kept.
pub const MAX_ARTIFACT_BYTES: u64 = 10 << 20;
/// The most a task's artifacts may hold in all.
pub const MAX_TASK_ARTIFACT_BYTES: u64 = 50 << 20;
/// The most files a task publishes.
pub(crate) const MAX_ARTIFACTS: usize = 100;

/// Checks `[checks] artifacts`: each a glob relative to the worktree that
/// stays inside it.
pub(crate) fn artifact_patterns(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        let leaves = path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
        if pattern.trim().is_empty() || leaves || pattern.starts_with('~') {
            return Err(format!(
                "pushpals.toml [checks] artifacts: `{pattern}` is not a path inside the worktree; name files relative to it, like \"target/junit.xml\" or \"screenshots/*.png\""
            ));
        }
        if path.components().any(|c| c.as_os_str() == ".git") {
            return Err(format!(
                "pushpals.toml [checks] artifacts: `{pattern}` names git's own files"
            ));
        }
        builder.add(Glob::new(pattern).map_err(|e| {
            format!("pushpals.toml [checks] artifacts: `{pattern}` is not a pattern: {e}")
        })?);
    }
    builder
        .build()
        .map_err(|e| format!("pushpals.toml [checks] artifacts: {e}"))
}

/// One file taken or refused.
#[derive(Debug)]
pub(crate) enum Taken {
    Published {
        path: String,
        sha256: String,
        bytes: u64,
        kind: &'static str,
        summary: Value,
    },
    Refused {
        path: String,
        reason: String,
    },
}

/// Takes the files `patterns` name from the task's worktree into `dir`
/// (the task's artifacts directory) and records each as an
/// `artifact_published` or `artifact_refused` event.
pub(crate) async fn publish(
    store: &pushpals_store::Store,
    dir: PathBuf,
    task_id: &TaskId,
    worktree: &Path,
    patterns: &[String],
) -> StepResult<()> {
    if patterns.is_empty() {
        return Ok(());
    }
    let set = artifact_patterns(patterns).map_err(Stop::Failed)?;
    let worktree = worktree.to_path_buf();
    let taken = tokio::task::spawn_blocking(move || take(&worktree, &set, &dir))
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?;
    let events: Vec<_> = taken
        .into_iter()
        .map(|taken| match taken {
            Taken::Published {
                path,
                sha256,
                bytes,
                kind,
                summary,
            } => NewEvent::typed(
                Some(task_id),
                Actor::Orchestrator,
                &ArtifactPublished {
                    path,
                    sha256,
                    bytes,
                    kind: kind.to_owned(),
                    summary,
                },
            ),
            Taken::Refused { path, reason } => NewEvent::typed(
                Some(task_id),
                Actor::Orchestrator,
                &ArtifactRefused { path, reason },
            ),
        })
        .collect::<Vec<_>>();
    append_all(store, events).await
}

/// Appends `events` (what was published and refused, each as encoded) in
/// one write; nothing is written when there are none, or when one could
/// not be encoded.
pub(crate) async fn append_all<E: std::fmt::Display>(
    store: &pushpals_store::Store,
    events: Vec<Result<NewEvent, E>>,
) -> StepResult<()> {
    let events: Vec<NewEvent> = events
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
    if !events.is_empty() {
        store
            .write(move |tx| {
                for event in events {
                    tx.append(event)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Whether `text` is a SHA-256 in hex.
pub(crate) fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Orchestrator {
    /// The artifacts a task published, newest run last.
    pub async fn artifacts(
        &self,
        task_id: &TaskId,
    ) -> crate::OrchestratorResult<Vec<ArtifactPublished>> {
        let events = self.task_events(task_id).await?;
        Ok(events
            .iter()
            .filter_map(|e| e.read::<ArtifactPublished>())
            .collect())
    }

    /// One artifact of a task by its SHA-256: its record and its bytes.
    /// `None` when the task published none with that digest.
    pub async fn artifact(
        &self,
        task_id: &TaskId,
        sha256: &str,
    ) -> crate::OrchestratorResult<Option<(ArtifactPublished, Vec<u8>)>> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        let Some(record) = self
            .artifacts(task_id)
            .await?
            .into_iter()
            .rev()
            .find(|a| a.sha256.eq_ignore_ascii_case(sha256))
        else {
            return Ok(None);
        };
        let path = crate::lifecycle::artifacts_dir(&self.worktrees_dir, task_id)
            .join(sha256.to_ascii_lowercase());
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some((record, bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(crate::OrchestratorError::Internal(format!(
                "cannot read the artifact {}: {error}",
                path.display()
            ))),
        }
    }
}

/// Finds the files `set` matches under `worktree` (never entering a linked
/// directory, never `.git`) and takes each.
pub(crate) fn take(worktree: &Path, set: &GlobSet, store: &Path) -> Vec<Taken> {
    let mut taken = Vec::new();
    let Ok(root) = Root::open(worktree) else {
        return taken;
    };
    let mut matched = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(worktree.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let relative = dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    pending.push(relative);
                }
            } else if set.is_match(&relative) {
                matched.push((relative, kind.is_symlink()));
            }
        }
    }
    matched.sort();
    let mut total = 0u64;
    for (relative, link) in matched {
        let path = relative.to_string_lossy().into_owned();
        if taken.len() >= MAX_ARTIFACTS {
            taken.push(Taken::Refused {
                path,
                reason: format!("a task publishes at most {MAX_ARTIFACTS} artifacts"),
            });
            continue;
        }
        if link {
            taken.push(Taken::Refused {
                path,
                reason: "it is a link; artifacts are read from the worktree, never through a link"
                    .into(),
            });
            continue;
        }
        taken.push(take_one(&root, &path, store, &mut total));
    }
    taken
}

fn take_one(root: &Root, path: &str, store: &Path, total: &mut u64) -> Taken {
    let refused = |reason: String| Taken::Refused {
        path: path.to_owned(),
        reason,
    };
    let size = std::fs::symlink_metadata(root.path().join(path)).map_or(0, |meta| meta.len());
    if size > MAX_ARTIFACT_BYTES {
        return refused(format!(
            "it is {size} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit of an artifact"
        ));
    }
    // Opened beneath the worktree with no link followed on the way.
    let bytes = match root.read(path, MAX_ARTIFACT_BYTES) {
        Ok(bytes) => bytes,
        Err(error) => return refused(format!("cannot read it: {error}")),
    };
    let size = bytes.len() as u64;
    if *total + size > MAX_TASK_ARTIFACT_BYTES {
        return refused(format!(
            "the task's artifacts would pass {MAX_TASK_ARTIFACT_BYTES} bytes in all"
        ));
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let stored = store.join(&sha256);
    let written = std::fs::create_dir_all(store).and_then(|()| {
        if stored.exists() {
            return Ok(());
        }
        // Written aside and renamed: a reader never sees half a file.
        let partial = store.join(format!(".{sha256}.partial"));
        std::fs::write(&partial, &bytes)?;
        std::fs::rename(&partial, &stored)
    });
    if let Err(error) = written {
        return refused(format!(
            "cannot keep it: {error}; `pushpals gc` frees space"
        ));
    }
    *total += size;
    let (kind, summary) = crate::artifact_summary::describe(path, &bytes);
    Taken::Published {
        path: path.to_owned(),
        sha256,
        bytes: size,
        kind,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_must_stay_inside_the_worktree() {
        assert!(artifact_patterns(&["target/junit.xml".into(), "shots/*.png".into()]).is_ok());
        for bad in [
            "../x",
            "/etc/passwd",
            "~/.ssh/id_rsa",
            "a/../../b",
            ".git/config",
            " ",
            "a[",
        ] {
            let err = artifact_patterns(&[bad.into()]).unwrap_err();
            assert!(err.starts_with("pushpals.toml [checks] artifacts"), "{err}");
        }
    }
}
