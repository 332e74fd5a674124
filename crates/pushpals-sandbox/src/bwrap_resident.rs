//! What the bubblewrap runner gives each command to run with: its
//! environment, and, for a command that needs nothing granted, its task's
//! resident sandbox (see [`crate::resident`]).

use crate::SANDBOX_HOME;
use crate::bwrap::{BwrapRunner, Relays, SANDBOX_PROXY_ADDRESS, Tail};
use crate::resident::{Attempt, MAX_REQUEST, Resident, ResidentKey, RunRequest, control_pair};
use crate::spec::{CommandOutcome, CommandSpec, OutputChunk, RunError};
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

impl BwrapRunner {
    /// The whole environment a command of `spec` starts with.
    pub(crate) fn command_env(&self, spec: &CommandSpec) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut set = |name: &str, value: OsString| env.push((name.into(), value));
        set("PATH", self.sandbox_path(spec.alias.as_ref()).into());
        set("HOME", SANDBOX_HOME.into());
        set("TMPDIR", "/tmp".into());
        set("LANG", "C.UTF-8".into());
        set("TERM", "dumb".into());
        if let Some(home) = std::env::var_os("HOME") {
            let rustup = Path::new(&home).join(".rustup");
            if rustup.exists() {
                set("RUSTUP_HOME", rustup.into());
            }
        }
        for (name, value) in &self.config.toolchain_env {
            set(name, value.into());
        }
        for (name, value) in spec.alias.iter().flat_map(|alias| &alias.env) {
            set(name, value.into());
        }
        if spec.network_proxy.is_some() {
            let proxy = format!("http://{SANDBOX_PROXY_ADDRESS}");
            for name in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "http_proxy",
                "https_proxy",
                "ALL_PROXY",
            ] {
                set(name, proxy.clone().into());
            }
        }
        if spec.gateway.is_some() {
            set("PUSHPALS_GATEWAY", crate::GATEWAY_URL.into());
            if spec.network_proxy.is_some() {
                // The gateway is reached directly, never through the proxy.
                set("NO_PROXY", "127.0.0.1".into());
                set("no_proxy", "127.0.0.1".into());
            }
        }
        for (name, value) in &spec.env {
            set(name, value.into());
        }
        env
    }

    /// The task's resident sandbox for `spec`, started if need be; `None`
    /// when the command must start in a fresh one: it is granted network,
    /// the gateway or a session, there is no helper, resident sandboxes
    /// are turned off or could not start, or the request is too large.
    pub(crate) async fn resident_for(&self, spec: &CommandSpec) -> Option<Arc<Resident>> {
        if self.config.fresh_per_command
            || self.config.helper.is_none()
            || spec.network_proxy.is_some()
            || spec.gateway.is_some()
            || spec.session.is_some()
            || spec.command_line.len() > MAX_REQUEST / 2
            || !self.residents.usable()
        {
            return None;
        }
        let key = ResidentKey {
            worktree: spec.cwd.clone(),
            read_only: spec.read_only_paths.clone(),
            home: spec.home.clone(),
            alias: spec.alias.as_ref().map(|alias| alias.path.clone()),
        };
        let start = async {
            let (server_end, helper_end) = control_pair()?;
            let relays = Relays {
                home: spec.home.as_deref(),
                alias: spec.alias.as_ref(),
                ..Relays::default()
            };
            let mut command = tokio::process::Command::new(&self.bwrap);
            command
                .args(self.bwrap_args(
                    &spec.cwd,
                    &spec.read_only_paths,
                    Tail::Serve(helper_end.as_raw_fd()),
                    relays,
                ))
                .env_clear()
                .env("PATH", self.sandbox_path(None))
                .env("LANG", "C.UTF-8");
            Resident::start(command, server_end, helper_end, &spec.cwd).await
        };
        self.residents.get(key, start).await
    }

    /// Runs `spec` in its task's resident sandbox, with the command's own
    /// limits and cgroup; a sandbox found gone before the command started
    /// is replaced once. `None` when the command must start in a fresh
    /// sandbox instead (see [`BwrapRunner::resident_for`]).
    pub(crate) async fn try_resident(
        &self,
        spec: &CommandSpec,
        output: &mpsc::Sender<OutputChunk>,
        cancel: &watch::Receiver<bool>,
    ) -> Option<Result<CommandOutcome, RunError>> {
        for _ in 0..2 {
            let resident = self.resident_for(spec).await?;
            match self
                .run_resident(&resident, spec, output, cancel.clone())
                .await
            {
                Attempt::Ran(result) => return Some(result),
                Attempt::SandboxGone => self.residents.forget(&resident).await,
            }
        }
        None
    }

    async fn run_resident(
        &self,
        resident: &Resident,
        spec: &CommandSpec,
        output: &mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> Attempt {
        let cgroup = match self.take_cgroup() {
            Ok(cgroup) => cgroup,
            Err(error) => return Attempt::Ran(Err(error)),
        };
        let start = match &spec.alias {
            Some(alias) if alias.start_here => alias.path.clone(),
            _ => spec.cwd.clone(),
        };
        let request = RunRequest {
            cwd: start,
            shell: self.bash.clone(),
            line: spec.command_line.clone(),
            rlimits: self
                .config
                .limits
                .rlimits(cgroup.is_none())
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            env: self.command_env(spec),
        };
        let procs = cgroup
            .as_ref()
            .map(crate::limits::CommandCgroup::procs_files)
            .unwrap_or_default();
        let outcome = resident
            .run(&request, &procs, spec.timeout, output, cancel)
            .await;
        if let Some(cgroup) = cgroup {
            self.return_cgroup(cgroup);
        }
        outcome
    }
}
