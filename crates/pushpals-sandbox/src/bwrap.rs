//! The bubblewrap backend: each command in fresh namespaces where the
//! worktree is the only writable place.

use crate::limits::{CgroupLayout, CommandCgroup, Limits};
use crate::spec::{CommandOutcome, CommandSpec, OutputChunk, RunError};
use crate::supervise::supervise;
use crate::{BoxFuture, Runner};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Entries of `/etc` that programs need; the rest of `/etc` (shadow files,
/// tokens in npmrc, ...) stays out.
const ETC_ENTRIES: &[&str] = &[
    "passwd",
    "group",
    "hosts",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "mime.types",
    "protocols",
    "services",
    "os-release",
    "debian_version",
    "java-17-openjdk",
    "maven",
    "magic",
    "magic.mime",
    "bash.bashrc",
    "profile",
    "inputrc",
    "locale.alias",
];

/// Top-level directories that are either symlinks into /usr or read-only
/// system directories.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
];

/// The sandbox's `PATH`.
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The sandbox's home directory (on its private `/tmp`).
const SANDBOX_HOME: &str = "/tmp/home";

/// Why the sandbox cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bwrap is missing.
    #[error(
        "bubblewrap (bwrap) is not installed, so commands cannot be isolated: install it (`apt-get install bubblewrap`), or set sandbox = \"none\" in config.toml to run commands without isolation (not recommended)"
    )]
    NoBwrap,
    /// prlimit is missing.
    #[error(
        "prlimit (util-linux) is not installed, so resource limits cannot be applied: install util-linux"
    )]
    NoPrlimit,
    /// Root without cgroups: process and memory limits would not hold.
    #[error(
        "running as root without a writable cgroup hierarchy (pids controller): process and memory limits would not hold; run Push Pals as a normal user or make /sys/fs/cgroup writable"
    )]
    NoCgroups,
    /// The probe run failed.
    #[error(
        "the sandbox does not work on this machine ({0}); user namespaces may be disabled (check /proc/sys/kernel/unprivileged_userns_clone and AppArmor's userns restrictions)"
    )]
    ProbeFailed(String),
}

/// Settings of the bubblewrap backend.
#[derive(Debug, Clone, Default)]
pub struct BwrapConfig {
    /// Resource limits per command.
    pub limits: Limits,
    /// Extra directories visible read-only at the same path (toolchains).
    pub toolchain_paths: Vec<PathBuf>,
}

impl BwrapConfig {
    /// The usual toolchain directories under the orchestrator's home that
    /// exist: rustup's toolchains and cargo's binaries and caches (never
    /// its credentials), pyenv's Pythons.
    pub fn with_default_toolchains(mut self) -> Self {
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            for relative in [
                ".rustup/toolchains",
                ".rustup/settings.toml",
                ".cargo/bin",
                ".cargo/registry",
                ".cargo/git",
                ".pyenv/versions",
                ".pyenv/shims",
                ".local/bin",
            ] {
                let path = home.join(relative);
                if path.exists() {
                    self.toolchain_paths.push(path);
                }
            }
        }
        self
    }
}

/// Runs each command under bubblewrap.
#[derive(Debug, Clone)]
pub struct BwrapRunner {
    bwrap: PathBuf,
    prlimit: PathBuf,
    config: BwrapConfig,
    cgroups: Option<CgroupLayout>,
}

fn find_program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

impl BwrapRunner {
    /// Checks that bubblewrap, prlimit and (as root) cgroups are usable and
    /// that a probe command runs; refuses otherwise.
    pub fn new(config: BwrapConfig) -> Result<Self, SandboxError> {
        let bwrap = find_program("bwrap").ok_or(SandboxError::NoBwrap)?;
        let prlimit = find_program("prlimit").ok_or(SandboxError::NoPrlimit)?;
        let cgroups = CgroupLayout::detect();
        if cgroups.is_none() && nix::unistd::geteuid().is_root() {
            return Err(SandboxError::NoCgroups);
        }
        let runner = Self {
            bwrap,
            prlimit,
            config,
            cgroups,
        };
        runner.probe()?;
        Ok(runner)
    }

    fn probe(&self) -> Result<(), SandboxError> {
        let dir = std::env::temp_dir();
        let mut command = std::process::Command::new(&self.bwrap);
        command.args(self.bwrap_args(&dir, &[], "true"));
        let output = command
            .output()
            .map_err(|e| SandboxError::ProbeFailed(e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(SandboxError::ProbeFailed(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ))
        }
    }

    /// The cgroup layout in use, if any.
    pub fn cgroups(&self) -> Option<&CgroupLayout> {
        self.cgroups.as_ref()
    }

    /// bwrap's arguments for running `line` in `worktree`.
    fn bwrap_args(&self, worktree: &Path, read_only: &[PathBuf], line: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push =
            |parts: &[&std::ffi::OsStr]| args.extend(parts.iter().map(|p| p.to_os_string()));
        push(&[
            "--die-with-parent".as_ref(),
            "--new-session".as_ref(),
            "--unshare-all".as_ref(),
            "--cap-drop".as_ref(),
            "ALL".as_ref(),
            "--hostname".as_ref(),
            "pushpals-sandbox".as_ref(),
        ]);
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::read_link(path) {
                Ok(target) => push(&["--symlink".as_ref(), target.as_os_str(), path.as_os_str()]),
                Err(_) if path.is_dir() => {
                    push(&["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()])
                }
                Err(_) => {}
            }
        }
        for entry in ETC_ENTRIES {
            let path = Path::new("/etc").join(entry);
            push(&["--ro-bind-try".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
        push(&[
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
            "--tmpfs".as_ref(),
            "/tmp".as_ref(),
            "--dir".as_ref(),
            SANDBOX_HOME.as_ref(),
        ]);
        for path in self.config.toolchain_paths.iter().chain(read_only) {
            push(&["--ro-bind-try".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
        push(&[
            "--bind".as_ref(),
            worktree.as_os_str(),
            worktree.as_os_str(),
            "--chdir".as_ref(),
            worktree.as_os_str(),
            "--".as_ref(),
            "/bin/sh".as_ref(),
            "-c".as_ref(),
            line.as_ref(),
        ]);
        args
    }

    fn sandbox_path(&self) -> String {
        let mut path = String::new();
        for toolchain in &self.config.toolchain_paths {
            if toolchain.ends_with("bin") || toolchain.ends_with("shims") {
                path.push_str(&toolchain.to_string_lossy());
                path.push(':');
            }
        }
        path.push_str(SANDBOX_PATH);
        path
    }
}

impl Runner for BwrapRunner {
    fn backend(&self) -> &'static str {
        "bubblewrap"
    }

    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>> {
        Box::pin(async move {
            if !spec.cwd.is_dir() {
                return Err(RunError::MissingCwd(spec.cwd));
            }
            let limits = &self.config.limits;
            let cgroup = match &self.cgroups {
                Some(layout) => Some(CommandCgroup::create(layout, limits).map_err(|e| {
                    RunError::Limits(format!("cannot make the command's cgroup: {e}"))
                })?),
                None => None,
            };
            // sh joins the cgroups, then execs prlimit, which sets the
            // rlimits and execs bwrap: no window where the command runs
            // unbounded.
            let mut command = Command::new("/bin/sh");
            command.arg("-c").arg(
                "while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 125; shift; done; shift; exec \"$@\"",
            );
            command.arg("pushpals-limits");
            for procs in cgroup.iter().flat_map(CommandCgroup::procs_files) {
                command.arg(procs);
            }
            command
                .arg("--")
                .arg(&self.prlimit)
                .args(limits.prlimit_args())
                .arg("--")
                .arg(&self.bwrap);
            command.args(self.bwrap_args(&spec.cwd, &spec.read_only_paths, &spec.command_line));
            command
                .env_clear()
                .env("PATH", self.sandbox_path())
                .env("HOME", SANDBOX_HOME)
                .env("TMPDIR", "/tmp")
                .env("LANG", "C.UTF-8")
                .env("TERM", "dumb");
            if let Some(home) = std::env::var_os("HOME") {
                let rustup = Path::new(&home).join(".rustup");
                if rustup.exists() {
                    command.env("RUSTUP_HOME", rustup);
                }
            }
            for (name, value) in &spec.env {
                command.env(name, value);
            }
            let outcome = supervise(command, spec.timeout, output, cancel).await;
            if let Some(cgroup) = &cgroup {
                cgroup.kill_all();
            }
            drop(cgroup);
            outcome
        })
    }
}
