//! The bubblewrap backend: each command in fresh namespaces where the
//! worktree is the only writable place.
//!
//! Over 400 lines: the bubblewrap runner (settings, toolchains, probe, arguments, running);
//! limits, `/etc` staging and the helper are their own modules.

use crate::etc::{StagedEtc, stage_etc};
use crate::limits::{CgroupLayout, ChildSetup, CommandCgroup, Limits};
use crate::resident::Residents;
use crate::spec::{CommandOutcome, CommandSpec, OutputChunk, RunError};
use crate::supervise::supervise;
use crate::{BoxFuture, Runner};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Top-level directories that are either symlinks into /usr or read-only
/// system directories.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
];

/// The sandbox's `PATH`.
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the proxy's socket and the helper appear inside the sandbox.
const SANDBOX_PROXY_SOCKET: &str = "/run/pushpals/proxy.sock";
const SANDBOX_HELPER: &str = "/run/pushpals/helper";
/// Where the relay listens inside the sandbox.
pub(crate) const SANDBOX_PROXY_ADDRESS: &str = "127.0.0.1:3128";
/// Where the model gateway's socket appears inside the sandbox.
const SANDBOX_GATEWAY_SOCKET: &str = "/run/pushpals/gateway.sock";
/// Where a session socket appears inside the sandbox.
const SANDBOX_SESSION_SOCKET: &str = "/run/pushpals/session.sock";

use crate::SANDBOX_HOME;

/// Why the sandbox cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bwrap is missing.
    #[error(
        "bubblewrap (bwrap) is not installed, so commands cannot be isolated: install it (`apt-get install bubblewrap`), or set sandbox = \"none\" in config.toml to run commands without isolation (not recommended)"
    )]
    NoBwrap,
    /// bash is missing.
    #[error(
        "bash is not installed: policy reads every command line with bash's grammar, so the sandbox runs it with bash; install bash"
    )]
    NoBash,
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
    /// The sandbox's `/etc` could not be staged.
    #[error("cannot prepare the sandbox's /etc in {path}: {message}")]
    Staging {
        /// Where.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
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
    /// Host directories visible read-only inside the private home, at a
    /// path relative to it (cargo's registry under `.cargo/`, whose other
    /// files, the lock and the credentials, stay out).
    pub home_binds: Vec<(PathBuf, String)>,
    /// Variables that point the tools at them (`CARGO_HOME`,
    /// `PYENV_ROOT`).
    pub toolchain_env: Vec<(String, String)>,
    /// The in-sandbox helper program (Landlock, network relay), and the
    /// arguments that come before its own (`pushpals sandbox-helper`).
    /// Without it, commands get no Landlock layer and no network grants.
    pub helper: Option<(PathBuf, Vec<String>)>,
    /// A private directory (mode 0700) where the runner stages the
    /// sandbox's `/etc`; a fresh one under the system's temporary directory
    /// when not given.
    pub state_dir: Option<PathBuf>,
    /// Start every command in a fresh sandbox, never in its task's
    /// resident one (which needs the helper).
    pub fresh_per_command: bool,
}

/// Runs each command under bubblewrap.
#[derive(Debug, Clone)]
pub struct BwrapRunner {
    pub(crate) bwrap: PathBuf,
    /// The bash that runs every line (policy reads lines with its grammar).
    pub(crate) bash: PathBuf,
    /// The staged `/etc`, bound read-only as the sandbox's `/etc` (one
    /// mount instead of one per entry).
    etc: Arc<StagedEtc>,
    pub(crate) config: BwrapConfig,
    cgroups: Option<CgroupLayout>,
    /// Empty cgroups left by earlier commands, ready for the next.
    pool: Arc<Mutex<Vec<CommandCgroup>>>,
    /// The tasks' resident sandboxes.
    pub(crate) residents: Arc<Residents>,
}

pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
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
        let bash = find_program("bash").ok_or(SandboxError::NoBash)?;
        let cgroups = CgroupLayout::detect();
        if cgroups.is_none() && nix::unistd::geteuid().is_root() {
            return Err(SandboxError::NoCgroups);
        }
        if let Some(layout) = &cgroups {
            let removed = layout.sweep_stale();
            if removed > 0 {
                tracing::info!(removed, "removed command cgroups left by a killed server");
            }
        }
        let etc = Arc::new(stage_etc(config.state_dir.as_deref())?);
        let runner = Self {
            bwrap,
            bash,
            etc,
            config,
            cgroups,
            pool: Arc::new(Mutex::new(Vec::new())),
            residents: Arc::new(Residents::default()),
        };
        runner.probe()?;
        Ok(runner)
    }

    fn probe(&self) -> Result<(), SandboxError> {
        let dir = std::env::temp_dir();
        let mut command = std::process::Command::new(&self.bwrap);
        command.args(self.bwrap_args(&dir, &[], Tail::Line("true"), Relays::default()));
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

    /// bwrap's arguments for running `tail` in `worktree`: under the
    /// helper when there is one (Landlock; with a proxy socket, the relay
    /// that carries the command's network traffic to the proxy).
    pub(crate) fn bwrap_args(
        &self,
        worktree: &Path,
        read_only: &[PathBuf],
        tail: Tail<'_>,
        relays: Relays<'_>,
    ) -> Vec<OsString> {
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
        push(&[
            "--ro-bind".as_ref(),
            self.etc.path.as_os_str(),
            "/etc".as_ref(),
        ]);
        push(&[
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
        ]);
        if let Tail::Serve(_) = tail {
            // A resident sandbox's /tmp lasts the task: bound it as memory.
            push(&[
                "--size".as_ref(),
                self.config.limits.memory_bytes.to_string().as_ref(),
            ]);
        }
        push(&[
            "--tmpfs".as_ref(),
            "/tmp".as_ref(),
            "--dir".as_ref(),
            SANDBOX_HOME.as_ref(),
        ]);
        for path in self.config.toolchain_paths.iter().chain(read_only) {
            push(&["--ro-bind-try".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
        if let Some(home) = relays.home {
            push(&["--bind".as_ref(), home.as_os_str(), SANDBOX_HOME.as_ref()]);
        }
        for (host, relative) in &self.config.home_binds {
            let inside = Path::new(SANDBOX_HOME).join(relative);
            push(&[
                "--ro-bind-try".as_ref(),
                host.as_os_str(),
                inside.as_os_str(),
            ]);
        }
        push(&[
            "--bind".as_ref(),
            worktree.as_os_str(),
            worktree.as_os_str(),
        ]);
        // The same directory at the repository's stable path: Landlock's
        // rule for the worktree holds there too (rules follow inodes).
        let mut start = worktree;
        if let Some(alias) = relays.alias {
            push(&[
                "--bind".as_ref(),
                worktree.as_os_str(),
                alias.path.as_os_str(),
            ]);
            if alias.start_here {
                start = &alias.path;
            }
        }
        push(&["--chdir".as_ref(), start.as_os_str()]);
        if let Some((helper, helper_args)) = &self.config.helper {
            if let Some(socket) = relays.proxy {
                push(&[
                    "--bind".as_ref(),
                    socket.as_os_str(),
                    SANDBOX_PROXY_SOCKET.as_ref(),
                ]);
            }
            if let Some(socket) = relays.gateway {
                push(&[
                    "--bind".as_ref(),
                    socket.as_os_str(),
                    SANDBOX_GATEWAY_SOCKET.as_ref(),
                ]);
            }
            if let Some(socket) = relays.session {
                push(&[
                    "--bind".as_ref(),
                    socket.as_os_str(),
                    SANDBOX_SESSION_SOCKET.as_ref(),
                ]);
            }
            push(&[
                "--ro-bind".as_ref(),
                helper.as_os_str(),
                SANDBOX_HELPER.as_ref(),
                "--".as_ref(),
                SANDBOX_HELPER.as_ref(),
            ]);
            args.extend(helper_args.iter().map(OsString::from));
            if relays.proxy.is_some() {
                args.extend(
                    ["--relay", SANDBOX_PROXY_ADDRESS, SANDBOX_PROXY_SOCKET].map(OsString::from),
                );
            }
            if relays.gateway.is_some() {
                args.extend(
                    ["--relay", crate::GATEWAY_ADDRESS, SANDBOX_GATEWAY_SOCKET].map(OsString::from),
                );
            }
            if relays.session.is_some() {
                args.extend(["--stdio", SANDBOX_SESSION_SOCKET].map(OsString::from));
            }
            // The home is under /tmp, which is writable.
            for writable in [worktree.as_os_str(), "/tmp".as_ref(), "/dev".as_ref()] {
                args.push("--writable".into());
                args.push(writable.to_os_string());
            }
        }
        match tail {
            Tail::Line(line) => {
                // Run with the shell whose grammar policy judged the line in.
                args.extend(["--".into(), self.bash.clone().into_os_string(), "-c".into()]);
                args.push(line.into());
            }
            Tail::Serve(fd) => args.extend(["--serve".into(), fd.to_string().into()]),
        }
        args
    }

    pub(crate) fn sandbox_path(&self, alias: Option<&crate::WorktreeAlias>) -> String {
        let mut path = String::new();
        for toolchain in &self.config.toolchain_paths {
            if toolchain.ends_with("bin") || toolchain.ends_with("shims") {
                path.push_str(&toolchain.to_string_lossy());
                path.push(':');
            }
        }
        path.push_str(SANDBOX_PATH);
        for dir in alias
            .iter()
            .flat_map(|a| a.path_dirs.iter().map(|d| a.path.join(d)))
        {
            path.push(':');
            path.push_str(&dir.to_string_lossy());
        }
        path
    }
}

/// What a sandbox runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tail<'a> {
    /// One command line, with bash.
    Line(&'a str),
    /// The helper's serving loop on this control descriptor (a task's
    /// resident sandbox; needs the helper).
    Serve(std::os::fd::RawFd),
}

/// What the sandbox relays and binds besides the worktree.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Relays<'a> {
    /// The network proxy's socket.
    pub(crate) proxy: Option<&'a Path>,
    /// The model gateway's socket.
    pub(crate) gateway: Option<&'a Path>,
    /// The private home directory.
    pub(crate) home: Option<&'a Path>,
    /// The session socket for the command's standard input and output.
    pub(crate) session: Option<&'a Path>,
    /// The worktree's second, stable place.
    pub(crate) alias: Option<&'a crate::WorktreeAlias>,
}

impl BwrapRunner {
    /// A cgroup for the next command: an emptied one from the pool, or a
    /// new one. `None` when cgroups are not in use.
    pub(crate) fn take_cgroup(&self) -> Result<Option<CommandCgroup>, RunError> {
        let Some(layout) = &self.cgroups else {
            return Ok(None);
        };
        if let Some(cgroup) = self.pool.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(Some(cgroup));
        }
        CommandCgroup::create(layout, &self.config.limits)
            .map(Some)
            .map_err(|e| RunError::Limits(format!("cannot make the command's cgroup: {e}")))
    }

    /// Empties a command's cgroup and keeps it for the next command; one
    /// that cannot be emptied is removed instead.
    pub(crate) fn return_cgroup(&self, cgroup: CommandCgroup) {
        cgroup.kill_all();
        if cgroup.is_empty()
            && let Ok(mut pool) = self.pool.lock()
        {
            pool.push(cgroup);
        }
    }
}

impl Runner for BwrapRunner {
    fn backend(&self) -> &'static str {
        "bubblewrap"
    }

    fn toolchains(&self) -> Vec<String> {
        let mut seen: Vec<String> = self
            .config
            .toolchain_paths
            .iter()
            .filter(|path| path.exists())
            .map(|path| format!("read-only {}", path.display()))
            .collect();
        for (host, relative) in &self.config.home_binds {
            seen.push(format!(
                "read-only {} at {}",
                host.display(),
                Path::new(SANDBOX_HOME).join(relative).display()
            ));
        }
        for (name, value) in &self.config.toolchain_env {
            seen.push(format!("{name}={value}"));
        }
        seen
    }

    fn release<'a>(&'a self, worktree: &'a Path) -> BoxFuture<'a, ()> {
        Box::pin(self.residents.release(worktree))
    }

    fn hook_command(&self) -> Option<String> {
        let (_, helper_args) = self.config.helper.as_ref()?;
        let mut line = SANDBOX_HELPER.to_owned();
        for arg in helper_args {
            // The helper's own arguments are plain words (`sandbox-helper`).
            line.push(' ');
            line.push_str(arg);
        }
        line.push_str(" hook");
        Some(line)
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
            if let Some(result) = self.try_resident(&spec, &output, &cancel).await {
                return result;
            }
            let limits = &self.config.limits;
            let cgroup = self.take_cgroup()?;
            let setup = ChildSetup::new(limits, cgroup.as_ref())
                .map_err(|e| RunError::Limits(e.to_string()))?;
            if self.config.helper.is_none()
                && (spec.network_proxy.is_some()
                    || spec.gateway.is_some()
                    || spec.session.is_some())
            {
                return Err(RunError::Network(
                    "no sandbox helper is configured to relay the network or the model gateway"
                        .into(),
                ));
            }
            let network = spec.network_proxy.as_deref();
            let relays = Relays {
                proxy: network,
                gateway: spec.gateway.as_deref(),
                home: spec.home.as_deref(),
                session: spec.session.as_deref(),
                alias: spec.alias.as_ref(),
            };
            let mut command = Command::new(&self.bwrap);
            command.args(self.bwrap_args(
                &spec.cwd,
                &spec.read_only_paths,
                Tail::Line(&spec.command_line),
                relays,
            ));
            // SAFETY: `apply` only makes system calls (open, write,
            // setrlimit) on data prepared before the fork; it neither
            // allocates nor takes locks, as code between fork and exec must.
            #[allow(unsafe_code)]
            unsafe {
                command.pre_exec(move || setup.apply());
            }
            command.env_clear().envs(self.command_env(&spec));
            let outcome = supervise(command, spec.timeout, output, cancel).await;
            if let Some(cgroup) = cgroup {
                self.return_cgroup(cgroup);
            }
            outcome
        })
    }
}
