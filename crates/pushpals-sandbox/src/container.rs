//! The container backend: each command runs in a fresh container of a
//! configured image (Podman or Docker), with no network, no capabilities,
//! no new privileges, a read-only root, a private `/tmp`, the worktree the
//! only writable mount, and memory, process, file-size, open-file and CPU
//! limits. The container is killed and removed on timeout or cancel.

use crate::bwrap::find_program;
use crate::spec::{CommandOutcome, CommandSpec, OutputChunk, RunError};
use crate::supervise::supervise_with;
use crate::{BoxFuture, Limits, Runner};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Settings of the container backend (`[sandbox] backend = "podman"` or
/// `"docker"`).
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// `podman` or `docker`.
    pub engine: String,
    /// The image every command runs in; it must hold the tools the
    /// repository's commands need (and be present locally: nothing is
    /// pulled).
    pub image: String,
    /// An OCI runtime to ask for (`--runtime`), e.g. `runc` where `crun`
    /// cannot handle the host's cgroup layout.
    pub runtime: Option<String>,
    /// Resource limits per command.
    pub limits: Limits,
}

/// Why the container backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The engine is not installed.
    #[error(
        "{0} is not installed, so the container backend cannot run: install it (`apt-get install {0}`) or use backend = \"bubblewrap\""
    )]
    NoEngine(String),
    /// Only podman and docker are known.
    #[error("the container engine {0:?} is not supported: use \"podman\" or \"docker\"")]
    UnknownEngine(String),
    /// The image is not present.
    #[error(
        "the image {image:?} is not present for {engine}: pull or build it first (`{engine} pull {image}`); Push Pals never pulls by itself"
    )]
    NoImage {
        /// The engine.
        engine: String,
        /// The image.
        image: String,
    },
    /// The probe container failed.
    #[error(
        "a probe container did not run `bash -c true` ({0}); the image must have bash (policy reads command lines as bash, and they run with it); if the runtime cannot handle this host's cgroups, set [sandbox] container_runtime = \"runc\""
    )]
    ProbeFailed(String),
}

/// Runs commands in containers.
#[derive(Debug)]
pub struct ContainerRunner {
    engine: PathBuf,
    name: &'static str,
    config: ContainerConfig,
}

/// Numbers container names, unique within the process (several runners
/// may exist at once).
static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

/// A container name no other run of this process uses.
fn container_name() -> String {
    format!(
        "pushpals-{}-{}",
        std::process::id(),
        NEXT_NAME.fetch_add(1, Ordering::Relaxed)
    )
}

/// Paths the engine's mount syntax cannot carry safely.
fn mountable(path: &Path) -> Result<String, RunError> {
    let text = path
        .to_str()
        .ok_or_else(|| RunError::Limits(format!("{} is not UTF-8", path.display())))?;
    if text.contains([':', ',', '\n']) || !path.is_absolute() {
        return Err(RunError::Limits(format!(
            "{text} cannot be mounted into a container (it must be absolute, without ':' or ',')"
        )));
    }
    Ok(text.to_owned())
}

impl ContainerRunner {
    /// Checks the engine and the image, and runs a probe container; refuses
    /// otherwise.
    pub fn new(config: ContainerConfig) -> Result<Self, ContainerError> {
        let name = match config.engine.as_str() {
            "podman" => "podman",
            "docker" => "docker",
            other => return Err(ContainerError::UnknownEngine(other.to_owned())),
        };
        let engine = find_program(name).ok_or_else(|| ContainerError::NoEngine(name.to_owned()))?;
        let present = std::process::Command::new(&engine)
            .args(["image", "inspect", &config.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            return Err(ContainerError::NoImage {
                engine: name.to_owned(),
                image: config.image.clone(),
            });
        }
        let runner = Self {
            engine,
            name,
            config,
        };
        let probe = std::process::Command::new(&runner.engine)
            .args(runner.run_args(&container_name(), None, &[], &[]))
            .args(["bash", "-c", "true"])
            .output()
            .map_err(|e| ContainerError::ProbeFailed(e.to_string()))?;
        if !probe.status.success() {
            return Err(ContainerError::ProbeFailed(
                String::from_utf8_lossy(&probe.stderr).trim().to_owned(),
            ));
        }
        Ok(runner)
    }

    /// `run` and its options, up to (and including) the image.
    fn run_args(
        &self,
        name: &str,
        workdir: Option<&str>,
        mounts: &[String],
        env: &[(String, String)],
    ) -> Vec<String> {
        let limits = &self.config.limits;
        let mut args: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            "none".into(),
            "--cap-drop".into(),
            "ALL".into(),
            "--security-opt".into(),
            "no-new-privileges".into(),
            "--read-only".into(),
            "--tmpfs".into(),
            "/tmp".into(),
            "--memory".into(),
            limits.memory_bytes.to_string(),
            "--memory-swap".into(),
            limits.memory_bytes.to_string(),
            "--pids-limit".into(),
            limits.processes.to_string(),
            "--ulimit".into(),
            format!("nofile={0}:{0}", limits.open_files),
            "--ulimit".into(),
            format!("nproc={0}:{0}", limits.processes),
            "--ulimit".into(),
            format!("fsize={0}:{0}", limits.file_size_bytes),
            "--ulimit".into(),
            format!("cpu={0}:{0}", limits.cpu_secs),
            "--env".into(),
            "HOME=/tmp".into(),
            "--env".into(),
            "TERM=dumb".into(),
            "--env".into(),
            "LANG=C.UTF-8".into(),
        ];
        if let Some(runtime) = &self.config.runtime {
            args.extend(["--runtime".into(), runtime.clone()]);
        }
        for mount in mounts {
            args.extend(["--mount".into(), mount.clone()]);
        }
        if let Some(dir) = workdir {
            args.extend(["--workdir".into(), dir.to_owned()]);
        }
        for (key, value) in env {
            args.extend(["--env".into(), format!("{key}={value}")]);
        }
        args.push(self.config.image.clone());
        args
    }

    async fn run_one(
        &self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> Result<CommandOutcome, RunError> {
        if spec.network_proxy.is_some()
            || spec.gateway.is_some()
            || spec.home.is_some()
            || spec.session.is_some()
        {
            return Err(RunError::Network(
                "the container backend does not relay network grants or the model gateway; use the bubblewrap backend for commands that need network and for external agents"
                    .into(),
            ));
        }
        if !spec.cwd.is_dir() {
            return Err(RunError::MissingCwd(spec.cwd));
        }
        let worktree = mountable(&spec.cwd)?;
        let mut mounts = vec![format!("type=bind,src={worktree},dst={worktree}")];
        // The worktree again at the repository's stable path.
        let workdir = match &spec.alias {
            Some(alias) => {
                let path = mountable(&alias.path)?;
                mounts.push(format!("type=bind,src={worktree},dst={path}"));
                if alias.start_here { path } else { worktree }
            }
            None => worktree,
        };
        for path in &spec.read_only_paths {
            let path = mountable(path)?;
            mounts.push(format!("type=bind,src={path},dst={path},readonly"));
        }
        let name = container_name();
        let mut env: Vec<(String, String)> = spec
            .alias
            .iter()
            .flat_map(|alias| alias.env.iter().cloned())
            .collect();
        env.extend(spec.env.iter().cloned());
        let mut command = Command::new(&self.engine);
        command
            .args(self.run_args(&name, Some(&workdir), &mounts, &env))
            // The shell whose grammar policy judged the line in.
            .args(["bash", "-c", &spec.command_line])
            .env_clear();
        for key in ["PATH", "HOME", "XDG_RUNTIME_DIR", "LANG"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        let _cleanup = Cleanup {
            engine: &self.engine,
            name: &name,
        };
        let engine = self.engine.clone();
        let killed = name.clone();
        // The container lives outside the client's process group: kill it
        // where it runs, at once.
        let kill = move || engine_in_background(&engine, &["kill", &killed]);
        supervise_with(command, spec.timeout, output, cancel, &kill).await
    }
}

/// Removes the container when the run ends or is dropped.
struct Cleanup<'a> {
    engine: &'a Path,
    name: &'a str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        engine_in_background(self.engine, &["rm", "-f", self.name]);
    }
}

/// Runs the engine on a thread of its own (waited for there, so it leaves
/// no zombie and blocks no async worker).
fn engine_in_background(engine: &Path, args: &[&str]) {
    let mut command = std::process::Command::new(engine);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::thread::spawn(move || {
        let _ = command.status();
    });
}

impl Runner for ContainerRunner {
    fn backend(&self) -> &'static str {
        self.name
    }

    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>> {
        Box::pin(self.run_one(spec, output, cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_the_mount_syntax_cannot_carry_are_refused() {
        assert!(mountable(Path::new("/work/tree")).is_ok());
        for bad in ["/a:b", "/a,readonly", "relative/path"] {
            assert!(mountable(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_engines_and_missing_images_are_named() {
        let config = |engine: &str, image: &str| ContainerConfig {
            engine: engine.into(),
            image: image.into(),
            runtime: None,
            limits: Limits::default(),
        };
        let error = ContainerRunner::new(config("lxc", "x")).unwrap_err();
        assert!(error.to_string().contains("use \"podman\" or \"docker\""));
        if find_program("podman").is_some() {
            let error =
                ContainerRunner::new(config("podman", "localhost/pushpals-no-such-image:0"))
                    .unwrap_err();
            assert!(
                error.to_string().contains("pull or build it first"),
                "{error}"
            );
        }
    }
}
