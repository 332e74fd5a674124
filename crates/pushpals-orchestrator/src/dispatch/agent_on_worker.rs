//! An external agent's commands on its run's worker host (its version
//! probe and the agent itself), mirrored, as a runner: each carries the agent's
//! private home, packed from the one prepared here, and has the model
//! gateway relayed through the worker's connection; the record the agent
//! leaves in its home comes back.

use super::MirroredRun;
use base64::Engine;
use pushpals_core::worker_wire::{AgentLaunch, HomeFile};
use pushpals_sandbox::{BoxFuture, CommandOutcome, CommandSpec, OutputChunk, RunError, Runner};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// The most files a home sent to a worker may hold.
const MOST_HOME_FILES: usize = 256;
/// The most bytes they may hold together.
const MOST_HOME_BYTES: u64 = 4 * 1024 * 1024;

/// The external agent `name`'s commands on `run`'s worker.
pub(crate) struct AgentOnWorker {
    run: Arc<MirroredRun>,
    name: String,
    /// The file in its home it leaves its record in.
    trajectory: Option<String>,
    /// The record of its last command, as the worker sent it.
    kept: Mutex<Option<String>>,
}

impl AgentOnWorker {
    /// Runs the agent `name` in the mirrored `run`; `trajectory` is the
    /// file its record is taken from.
    pub(crate) fn new(run: Arc<MirroredRun>, name: &str, trajectory: Option<&str>) -> Self {
        Self {
            run,
            name: name.to_owned(),
            trajectory: trajectory.map(str::to_owned),
            kept: Mutex::new(None),
        }
    }

    /// The record the agent's last command left, once.
    pub(crate) fn take_trajectory(&self) -> Option<String> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl Runner for AgentOnWorker {
    fn backend(&self) -> &'static str {
        "worker"
    }

    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>> {
        Box::pin(async move {
            let home = match &spec.home {
                Some(dir) => pack_home(dir).map_err(RunError::Worker)?,
                None => Vec::new(),
            };
            let agent = AgentLaunch {
                name: self.name.clone(),
                home,
                trajectory: self.trajectory.clone(),
                gateway: spec.gateway.is_some(),
            };
            let (outcome, record) = self
                .run
                .run_mirrored(spec, output, cancel, None, Some(agent))
                .await?;
            *self
                .kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = record;
            Ok(outcome)
        })
    }
}

/// The regular files under `home`, for the worker to make the agent's
/// home of. Links are left out (a home is the agent's to write, and a link
/// must not carry another file of this machine away); too many files or
/// bytes is an error that says so.
pub(crate) fn pack_home(home: &Path) -> Result<Vec<HomeFile>, String> {
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut dirs = vec![home.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read the agent's home {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read the agent's home: {e}"))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if meta.is_dir() {
                dirs.push(path);
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            bytes += meta.len();
            if files.len() >= MOST_HOME_FILES || bytes > MOST_HOME_BYTES {
                return Err(format!(
                    "the agent's home {} holds more than {MOST_HOME_FILES} files or {} MiB, too \
                     much to send to a worker; clear it, or run the agent on this machine",
                    home.display(),
                    MOST_HOME_BYTES / 1024 / 1024
                ));
            }
            let content =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let relative = path
                .strip_prefix(home)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            files.push(HomeFile {
                path: relative.to_string_lossy().into_owned(),
                base64: base64::engine::general_purpose::STANDARD.encode(content),
                mode: meta.permissions().mode() & 0o777,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_is_packed_without_its_links() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".codex")).unwrap();
        std::fs::write(home.path().join(".codex/config.toml"), "model = 'm'\n").unwrap();
        std::fs::set_permissions(
            home.path().join(".codex/config.toml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", home.path().join("passwd")).unwrap();
        let files = pack_home(home.path()).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].path, ".codex/config.toml");
        assert_eq!(files[0].mode, 0o600);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&files[0].base64)
            .unwrap();
        assert_eq!(bytes, b"model = 'm'\n");
    }

    #[test]
    fn a_home_too_big_for_a_worker_is_refused() {
        let home = tempfile::tempdir().unwrap();
        for n in 0..=MOST_HOME_FILES {
            std::fs::write(home.path().join(format!("f{n}")), "x").unwrap();
        }
        let refused = pack_home(home.path()).unwrap_err();
        assert!(
            refused.contains("too much to send to a worker"),
            "{refused}"
        );
    }
}
