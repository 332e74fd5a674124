//! Server settings from `config.toml`.
//!
//! Over 400 lines: every section of config.toml with its defaults and validation in one place, so
//! a start and a reload read them alike.

use pushpals_agent::{AgentConfig, ModelConfig};
use pushpals_sandbox::Limits;
use pushpals_store::Durability;
use pushpals_workspace::Identity;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings of the orchestrator, read from
/// `$XDG_CONFIG_HOME/pushpals/config.toml`. Every field has a default;
/// unknown keys are an error so a typo does not pass silently.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How many tasks run at once (default: the number of cores).
    pub max_parallel: Option<usize>,
    /// `"normal"` (default: survives a killed process) or `"full"`
    /// (survives a power cut, slower).
    pub durability: Option<DurabilityChoice>,
    /// Who commits.
    pub git: GitSettings,
    /// Time limits.
    pub limits: LimitSettings,
    /// How commands are isolated.
    pub sandbox: SandboxSettings,
    /// What sandboxed commands granted network may reach.
    pub network: NetworkSettings,
    /// Where committed task branches go.
    pub delivery: DeliverySettings,
    /// Where pull requests are opened.
    pub forge: Option<ForgeSettings>,
    /// Per repository, where its task branches and pull requests go
    /// (`[repos.NAME]`, by registered name).
    pub repos: BTreeMap<String, crate::repo_settings::RepoSettings>,
    /// Named models (`[models.fast]`, `[models.strong]`, ...).
    pub models: BTreeMap<String, ModelConfig>,
    /// The built-in agent: which model does what, and its budgets.
    pub agent: AgentConfig,
    /// External agents (`[agents.claude-code]`, `[agents.<any>]`).
    pub agents: BTreeMap<String, ExternalAgentSettings>,
    /// Where to tell the person that something needs them.
    pub notify: NotifySettings,
    /// HTTPS: the certificate and key files.
    pub tls: Option<TlsSettings>,
    /// HTTPS: certificates from an ACME CA for a public domain.
    pub acme: Option<AcmeSettings>,
    /// What is cleaned up, and when.
    pub retention: RetentionSettings,
    /// The HTTP side.
    pub server: ServerSettings,
    /// The proactive scanner.
    pub scan: ScanSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Where the server keeps its state (`[store] url`).
    pub store: crate::store_settings::StoreSettings,
    /// Worker hosts and this machine's share of the work (`[workers]`).
    pub workers: crate::worker_settings::WorkerSettings,
}

/// `[agents.<name>]`: an external agent. A built-in adapter's name
/// (`claude-code`) configures that adapter; any other name needs `command`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalAgentSettings {
    /// The agent's program, when it is not on `PATH`.
    pub program: Option<std::path::PathBuf>,
    /// The command line of an agent without a built-in adapter: it gets
    /// the prompt on stdin and in `$PUSHPALS_PROMPT`, and the gateway in
    /// `$OPENAI_BASE_URL` / `$ANTHROPIC_BASE_URL` with the task's token.
    pub command: Option<String>,
    /// The named model it uses (default: the worker model).
    pub model: Option<String>,
}

/// `[acme]`: a certificate from an ACME CA (Let's Encrypt by default) for
/// the domains named, with HTTP-01 challenges answered on `challenge_addr`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// The names the certificate is for; each must resolve to this server.
    pub domains: Vec<String>,
    /// Contacts for the CA, e.g. `["mailto:me@example.org"]`.
    #[serde(default)]
    pub contact: Vec<String>,
    /// The CA's directory URL (default: Let's Encrypt).
    #[serde(default = "AcmeSettings::default_directory")]
    pub directory: String,
    /// A root certificate to trust for the CA's own HTTPS (a test or
    /// private ACME CA).
    pub directory_ca: Option<std::path::PathBuf>,
    /// Where the CA's HTTP-01 challenges are answered (default
    /// `0.0.0.0:80`: the CA connects to port 80 of each domain).
    #[serde(default = "AcmeSettings::default_challenge_addr")]
    pub challenge_addr: std::net::SocketAddr,
}

impl AcmeSettings {
    fn default_directory() -> String {
        "https://acme-v02.api.letsencrypt.org/directory".to_owned()
    }

    fn default_challenge_addr() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([0, 0, 0, 0], 80))
    }
}

/// `[telemetry]`: where spans go and how logs look.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// An OTLP/HTTP collector (e.g. `http://127.0.0.1:4318`): the spans of
    /// requests, tasks, commands and model calls are sent to
    /// `<endpoint>/v1/traces` as JSON. Off when absent.
    pub otlp_endpoint: Option<String>,
    /// The service name on the spans (default `pushpals`).
    pub service_name: Option<String>,
    /// `"text"` (default) or `"json"`: one JSON object per log line.
    pub log_format: Option<LogFormat>,
}

/// `[telemetry] log_format`: how log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain text (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Reads `PUSHPALS_LOG_FORMAT`'s value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// `[scan]` in config.toml: what the person gives the scanner.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanSettings {
    /// An advisory database in the OSV format: a directory of `.json`
    /// records, one `.json` file (a record or a list), or an http(s) URL of
    /// such a file.
    pub osv: Option<String>,
}

/// `[server]`: reverse proxies whose `X-Forwarded-For` is believed, and the
/// bounds on connections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Addresses of trusted proxies (e.g. `["127.0.0.1", "::1"]` for a
    /// proxy on the same machine); forwarded headers from others are
    /// ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `/readyz` says "not ready" when the data directory's disk has less
    /// free space than this many MiB (default 256).
    pub ready_min_free_mib: Option<u64>,
    /// A second address that serves `/metrics` without a token, for a
    /// Prometheus scraper (bind it to loopback or a private network).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Open connections at most (default 8192); one more is closed at once.
    pub max_connections: Option<usize>,
    /// Seconds a request's headers may take to arrive, and an idle
    /// kept-alive connection may stay open (default 10).
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request's body may take to arrive (default 60).
    pub body_timeout_secs: Option<u64>,
}

/// `[retention]`: worktrees of ended tasks go after some days; branches of
/// committed tasks go once merged into the base branch. Events and blobs
/// are never deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days after a task ended before its worktree is removed (0: never).
    pub worktree_days: u64,
    /// Delete `pushpals/<id>` branches whose commit the base branch holds.
    pub prune_merged_branches: bool,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            worktree_days: 14,
            prune_merged_branches: true,
        }
    }
}

/// `[tls]`: serve HTTPS with these PEM files (reloaded when they change).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, the server's certificate first.
    pub cert: std::path::PathBuf,
    /// The private key; must not be readable by other users.
    pub key: std::path::PathBuf,
    /// A private CA's certificate (from `pushpals tls init`), offered to
    /// phones at `/ca.pem` so they can trust the server.
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
}

/// `[notify]`: an ntfy-style webhook that gets a POST when an approval is
/// requested and when a task ends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// The URL to POST to (e.g. an ntfy topic).
    pub webhook: Option<String>,
    /// An environment variable holding a bearer token for the webhook.
    pub webhook_token_env: Option<String>,
    /// The companion's address as the phone reaches it, for links in the
    /// notifications (e.g. `https://myhost.example`).
    pub public_url: Option<String>,
    /// Who push services may contact about this server's Web Push
    /// (`mailto:you@example.com`); a placeholder when unset.
    pub push_subject: Option<String>,
}

/// `[forge]`: the forge pull requests are opened on, after a push and its
/// own approval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeSettings {
    /// Only `"github"` for now.
    pub kind: ForgeKind,
    /// The API's base URL (GitHub's public API by default).
    #[serde(default = "default_github_api")]
    pub api_url: String,
    /// The repository's owner (user or organisation), for a server with
    /// one repository whose remote's URL does not name it.
    pub owner: Option<String>,
    /// That repository's name.
    pub repo: Option<String>,
    /// The environment variable holding the token (never stored).
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Open pull requests as drafts.
    #[serde(default)]
    pub draft: bool,
}

fn default_github_api() -> String {
    "https://api.github.com".into()
}

fn default_token_env() -> String {
    "GITHUB_TOKEN".into()
}

/// `[delivery]`: the remote task branches are pushed to, after approval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// The git remote (default "origin"); without such a remote in the
    /// repository, no push is offered.
    pub remote: String,
    /// The branch task branches are rebased onto before a push (default:
    /// the branch checked out when the server started).
    pub base_branch: Option<String>,
    /// An environment variable holding a token for HTTPS pushes (sent as
    /// an HTTP header, never stored); without it git's own credential
    /// helpers and SSH apply.
    pub token_env: Option<String>,
    /// The host that token is sent to (default: the `[forge]`'s host; with
    /// neither, and one repository served, its remote's host). A remote
    /// on another host never gets it.
    pub token_host: Option<String>,
    /// Fetch the base branch from the remote before each task starts, so a
    /// task starts from the remote's latest base (default on).
    pub fetch_before_task: bool,
    /// What a task does when that fetch fails.
    pub on_fetch_failure: FetchFailure,
    /// How long a task tries the fetch again before it fails (default 600).
    pub fetch_wait_secs: u64,
}

/// What a task does when the base branch cannot be fetched before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchFailure {
    /// Wait, saying why, and try again (until `fetch_wait_secs`).
    #[default]
    Wait,
    /// Start from the base fetched last time (or the local HEAD), saying so.
    LastFetched,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            remote: "origin".into(),
            base_branch: None,
            token_env: None,
            token_host: None,
            fetch_before_task: true,
            on_fetch_failure: FetchFailure::Wait,
            fetch_wait_secs: 600,
        }
    }
}

/// `[network]`: hosts a command granted network may reach through the
/// proxy. Empty (the default): the proxy refuses everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// Host patterns, e.g. `"*.example.com"`.
    pub allow: Vec<String>,
}

/// `[sandbox]`: the isolation backend and its resource limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// `"bubblewrap"` (default; refuses to start when it cannot isolate),
    /// `"podman"` or `"docker"` (a container of `image` per command), or
    /// `"none"` (no isolation; every task shows a warning).
    pub backend: SandboxBackend,
    /// The image of the container backends (present locally; never pulled).
    pub image: Option<String>,
    /// An OCI runtime for the container backends (`--runtime`), e.g.
    /// `"runc"` on hosts whose cgroup layout `crun` refuses.
    pub container_runtime: Option<String>,
    /// Memory per command in MiB (default 4096).
    pub memory_mib: u64,
    /// Processes per command (default 512).
    pub max_processes: u64,
    /// Open files per process (default 4096).
    pub open_files: u64,
    /// Largest file a command may write, in MiB (default 2048).
    pub file_size_mib: u64,
    /// CPU seconds per command (default 3600).
    pub cpu_secs: u64,
    /// More directories every command sees read-only at the same path (a
    /// toolchain installed elsewhere); never a credential location.
    pub read_only_paths: Vec<std::path::PathBuf>,
    /// Variables of the server's environment every command gets (a
    /// toolchain's `GOPATH`); never one that changes what runs or looks
    /// like a secret.
    pub pass_env: Vec<String>,
    /// Keep one sandbox up per task and start its commands inside it
    /// (default); `false` starts every command in a fresh sandbox.
    pub resident: bool,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            backend: SandboxBackend::Bubblewrap,
            image: None,
            container_runtime: None,
            memory_mib: limits.memory_bytes >> 20,
            max_processes: limits.processes,
            open_files: limits.open_files,
            file_size_mib: limits.file_size_bytes >> 20,
            cpu_secs: limits.cpu_secs,
            read_only_paths: Vec::new(),
            pass_env: Vec::new(),
            resident: true,
        }
    }
}

impl SandboxSettings {
    /// The limits as the sandbox takes them.
    pub fn limits(&self) -> Limits {
        Limits {
            cpu_secs: self.cpu_secs,
            memory_bytes: self.memory_mib << 20,
            processes: self.max_processes,
            open_files: self.open_files,
            file_size_bytes: self.file_size_mib << 20,
        }
    }

    /// True when commands run without isolation.
    pub fn unconfined(&self) -> bool {
        self.backend == SandboxBackend::None
    }
}

/// How commands are isolated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxBackend {
    /// bubblewrap: namespaces, Landlock, cgroups (the default).
    #[default]
    Bubblewrap,
    /// A Podman container of `image` per command.
    Podman,
    /// A Docker container of `image` per command.
    Docker,
    /// No isolation at all.
    None,
}

impl SandboxBackend {
    /// Its name in `config.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bubblewrap => "bubblewrap",
            Self::Podman => "podman",
            Self::Docker => "docker",
            Self::None => "none",
        }
    }

    /// The container engine's program, for the container backends.
    pub fn container_engine(self) -> Option<&'static str> {
        matches!(self, Self::Podman | Self::Docker).then(|| self.as_str())
    }
}

/// `durability` in `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityChoice {
    /// A commit survives a killed process.
    Normal,
    /// A commit survives a power cut.
    Full,
}

/// `[forge] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKind {
    /// GitHub (or GitHub Enterprise with `api_url`).
    Github,
}

impl std::fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Github => "github",
        })
    }
}

/// The author and committer of task commits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitSettings {
    /// Name (default "Push Pals").
    pub author_name: String,
    /// Email (default "pushpals@localhost").
    pub author_email: String,
}

impl Default for GitSettings {
    fn default() -> Self {
        Self {
            author_name: "Push Pals".into(),
            author_email: "pushpals@localhost".into(),
        }
    }
}

/// Wall-time limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// A worker command's limit in seconds (default 1800).
    pub command_timeout_secs: u64,
    /// A check's limit in seconds, unless `pushpals.toml` says less
    /// (default 1800).
    pub check_timeout_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            command_timeout_secs: 1800,
            check_timeout_secs: 1800,
        }
    }
}

impl Settings {
    /// Parses `config.toml` text; the error says which key is wrong.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let settings: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        settings.durability()?;
        settings.store.check()?;
        settings.workers.check()?;
        if let Some(engine) = settings.sandbox.backend.container_engine()
            && settings.sandbox.image.is_none()
        {
            return Err(format!(
                "[sandbox] backend = {engine:?} needs image = \"...\": the image every command runs in"
            ));
        }
        if settings.tls.is_some() && settings.acme.is_some() {
            return Err(
                "[tls] and [acme] both set: use certificate files ([tls]) or ACME ([acme]), not both"
                    .into(),
            );
        }
        if let Some(acme) = &settings.acme {
            if acme.domains.is_empty() {
                return Err(
                    "[acme] domains is empty: name the domains the certificate is for".into(),
                );
            }
            if !acme.directory.starts_with("https://") {
                return Err(format!(
                    "[acme] directory = {:?} must be an https:// URL",
                    acme.directory
                ));
            }
        }
        if let Some(endpoint) = &settings.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(format!(
                "[telemetry] otlp_endpoint = {endpoint:?} must be an http:// or https:// URL \
                 of an OTLP/HTTP collector (e.g. \"http://127.0.0.1:4318\")"
            ));
        }
        pushpals_sandbox::Allowlist::new(&settings.network.allow)
            .map_err(|e| format!("[network] allow: {e}"))?;
        for url in [&settings.notify.webhook, &settings.notify.public_url]
            .into_iter()
            .flatten()
        {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "[notify] {url:?} is not an http(s) URL; write it like https://ntfy.example/topic"
                ));
            }
        }
        for (name, model) in &settings.models {
            model.validate(name)?;
        }
        for (name, agent) in &settings.agents {
            pushpals_agent::external::adapter(name, agent.command.as_deref())?;
            if let Some(model) = &agent.model
                && !settings.models.contains_key(model)
            {
                return Err(format!(
                    "[agents.{name}] model = {model:?}, but there is no [models.{model}]"
                ));
            }
        }
        if let Some(name) = &settings.agent.external
            && !settings.agents.contains_key(name)
        {
            pushpals_agent::external::adapter(name, None)
                .map_err(|e| format!("[agent] external = {name:?}: {e}"))?;
        }
        crate::sandbox_access::check(&settings.sandbox)?;
        settings.check_delivery()?;
        if settings.max_parallel == Some(0) {
            return Err("max_parallel must be at least 1".into());
        }
        Ok(settings)
    }

    /// `[delivery]`, `[forge]` and `[repos.NAME]` hold names git and a
    /// forge accept.
    fn check_delivery(&self) -> Result<(), String> {
        if !crate::repo_settings::valid_remote_name(&self.delivery.remote) {
            return Err(format!(
                "[delivery] remote = {:?} is not a git remote name",
                self.delivery.remote
            ));
        }
        if let Some(host) = &self.delivery.token_host
            && (host.is_empty()
                || host.contains(['/', ':', '@'])
                || host.contains(char::is_whitespace))
        {
            return Err(format!(
                "[delivery] token_host = {host:?} must be a host name alone, like \"github.com\""
            ));
        }
        if let Some(forge) = &self.forge
            && forge.owner.is_some() != forge.repo.is_some()
        {
            return Err("[forge] owner and repo go together: set both, or neither (each repository's forge repository is then read from its remote's URL, or set as [repos.NAME] forge_repo)".into());
        }
        for (name, repo) in &self.repos {
            repo.validate(name)?;
        }
        Ok(())
    }

    /// The store's durability level.
    pub fn durability(&self) -> Result<Durability, String> {
        Ok(match self.durability {
            None | Some(DurabilityChoice::Normal) => Durability::Normal,
            Some(DurabilityChoice::Full) => Durability::Full,
        })
    }

    /// How many tasks may run at once.
    pub fn max_parallel(&self) -> usize {
        self.max_parallel.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2)
        })
    }

    /// The commit identity.
    pub fn identity(&self) -> Identity {
        Identity {
            name: self.git.author_name.clone(),
            email: self.git.author_email.clone(),
        }
    }

    /// A worker command's time limit.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.command_timeout_secs)
    }

    /// A check's time limit.
    pub fn check_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.check_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let settings = Settings::from_toml("").unwrap();
        assert!(settings.max_parallel() >= 1);
        assert_eq!(settings.identity().name, "Push Pals");
        let settings = Settings::from_toml(
            "max_parallel = 3\ndurability = \"full\"\n[git]\nauthor_name = \"Bot\"\n[limits]\ncommand_timeout_secs = 5\n",
        )
        .unwrap();
        assert_eq!(settings.max_parallel(), 3);
        assert_eq!(settings.durability(), Ok(Durability::Full));
        assert_eq!(settings.identity().name, "Bot");
        assert_eq!(settings.identity().email, "pushpals@localhost");
        assert_eq!(settings.command_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            Settings::from_toml("max_paralel = 3")
                .unwrap_err()
                .contains("max_paralel")
        );
        assert!(
            Settings::from_toml("durability = \"fast\"")
                .unwrap_err()
                .contains("fast")
        );
        assert!(
            Settings::from_toml("max_parallel = 0")
                .unwrap_err()
                .contains("at least 1")
        );
        // Choices are enums: a wrong one is named with the ones there are.
        let backend = Settings::from_toml("[sandbox]\nbackend = \"chroot\"").unwrap_err();
        assert!(
            backend.contains("chroot")
                && backend.contains("bubblewrap")
                && backend.contains("podman"),
            "{backend}"
        );
        let durability = Settings::from_toml("durability = \"fast\"").unwrap_err();
        assert!(
            durability.contains("normal") && durability.contains("full"),
            "{durability}"
        );
        let forge = Settings::from_toml("[forge]\nkind = \"gitlab\"\nowner = \"o\"\nrepo = \"r\"")
            .unwrap_err();
        assert!(
            forge.contains("gitlab") && forge.contains("github"),
            "{forge}"
        );
        let docker = Settings::from_toml("[sandbox]\nbackend = \"docker\"").unwrap_err();
        assert!(docker.contains("needs image"), "{docker}");
        let settings = Settings::from_toml("[sandbox]\nbackend = \"none\"\ndurability = \"full\"");
        assert!(settings.is_err(), "durability is not a [sandbox] key");
        let settings =
            Settings::from_toml("durability = \"full\"\n[sandbox]\nbackend = \"none\"").unwrap();
        assert!(settings.sandbox.unconfined());
        assert_eq!(settings.durability(), Ok(Durability::Full));
        let format = Settings::from_toml("[telemetry]\nlog_format = \"yaml\"").unwrap_err();
        assert!(
            format.contains("log_format = \"yaml\"") && format.contains("`json`"),
            "{format}"
        );
        let endpoint =
            Settings::from_toml("[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"").unwrap_err();
        assert!(endpoint.contains("http://"), "{endpoint}");
        assert!(
            Settings::from_toml(
                "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nlog_format = \"json\""
            )
            .is_ok()
        );
        let both = Settings::from_toml(
            "[tls]\ncert = \"c\"\nkey = \"k\"\n[acme]\ndomains = [\"example.org\"]",
        )
        .unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let none = Settings::from_toml("[acme]\ndomains = []").unwrap_err();
        assert!(none.contains("domains is empty"), "{none}");
        let acme = Settings::from_toml("[acme]\ndomains = [\"example.org\"]").unwrap();
        let acme = acme.acme.unwrap();
        assert!(acme.directory.starts_with("https://"));
        assert_eq!(acme.challenge_addr.port(), 80);
    }

    #[test]
    fn external_agents_are_checked() {
        let unknown = Settings::from_toml(
            "[agents.mystery]
",
        )
        .unwrap_err();
        assert!(unknown.contains("command = "), "{unknown}");
        let model = Settings::from_toml(
            "[agents.claude-code]
model = \"big\"",
        )
        .unwrap_err();
        assert!(model.contains("no [models.big]"), "{model}");
        let default = Settings::from_toml("[agent]\nexternal = \"nobody\"").unwrap_err();
        assert!(default.contains("[agent] external"), "{default}");
        let fine = Settings::from_toml(
            "[agent]\nexternal = \"mine\"\n[agents.mine]\ncommand = \"my-agent --go\"\n[agents.claude-code]\nprogram = \"/opt/claude\"",
        )
        .unwrap();
        assert_eq!(fine.agents.len(), 2);
    }
}
