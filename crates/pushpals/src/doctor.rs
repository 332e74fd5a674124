//! `pushpals doctor`: checks what Push Pals needs on this machine and says,
//! one line each, what is wrong and how to fix it.
//!
//! Over 400 lines: every machine check doctor makes, each small, in the order it prints them.

use crate::serve::{choose_runner, load_policy, load_settings};
use pushpals_agent::ModelClient;
use pushpals_agent::conversation::{Message, ModelRequest};
use pushpals_orchestrator::Settings;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, with a caveat.
    Warn,
    /// Required and broken.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.to_owned(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_owned),
    }
}

/// Least free space on the data directory's disk before it warns.
const LOW_DISK: u64 = 2 << 30;

/// Runs every check.
pub async fn run(
    config: &Path,
    config_explicit: bool,
    data_dir: &Path,
    server: &str,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let settings = match load_settings(config, config_explicit) {
        Ok(settings) => {
            checks.push(check(
                "config",
                Status::Ok,
                format!("{} is valid (or absent: defaults)", config.display()),
                None,
            ));
            Some(settings)
        }
        Err(error) => {
            checks.push(check(
                "config",
                Status::Fail,
                format!("{error:#}"),
                Some("fix the file; every key is documented in the README"),
            ));
            None
        }
    };
    match load_policy(config) {
        Ok(_) => checks.push(check(
            "policy",
            Status::Ok,
            "built-in rules and policy.toml load",
            None,
        )),
        Err(error) => checks.push(check(
            "policy",
            Status::Fail,
            format!("{error:#}"),
            Some("fix policy.toml beside config.toml"),
        )),
    }
    checks.push(git_check());
    checks.push(disk_check(data_dir));
    checks.push(cache_copy_check(data_dir));
    checks.push(task_start_check(data_dir));
    if let Some(settings) = &settings {
        checks.push(sandbox_check(settings, data_dir));
    }
    checks.push(landlock_check());
    checks.push(cgroup_check());
    if let Some(settings) = &settings {
        checks.push(tls_check(settings, data_dir));
        checks.extend(model_checks(settings).await);
        checks.extend(agent_checks(settings));
    }
    // On a worker host: does the server take this worker's reports?
    if let Some(connected) = crate::commands::worker_connection(server, data_dir).await {
        match connected {
            Ok((fine, labels)) => {
                checks.push(check("worker", Status::Ok, fine, None));
                // What the worker offers must run in its sandbox.
                if let Some(settings) = &settings {
                    for (label, found) in
                        crate::commands::worker_toolchains(settings, data_dir, &labels).await
                    {
                        checks.push(match found {
                            Ok(version) => {
                                check("toolchain", Status::Ok, format!("{label}: {version}"), None)
                            }
                            Err(why) => check(
                                "toolchain",
                                Status::Fail,
                                format!("{label}: {why}"),
                                Some(
                                    "install it where the sandbox sees it (/usr, /opt, ~/.cargo, \
                                     ~/.rustup), or enrol the worker without that label",
                                ),
                            ),
                        });
                    }
                }
            }
            Err(why) => checks.push(check(
                "worker",
                Status::Fail,
                why,
                Some("start the server, or enrol again with a new `pushpals worker token`"),
            )),
        }
    }
    let reached = server_check(server).await;
    let answers = reached.status == Status::Ok;
    checks.push(reached);
    if answers {
        checks.extend(repository_checks(server, data_dir).await);
    }
    checks
}

/// The repository's own checks, tried by the server in the sandbox: a
/// machine where they cannot run is not "all well".
async fn repository_checks(server: &str, data_dir: &Path) -> Vec<Check> {
    let Ok(client) = crate::client::Client::new(server, data_dir) else {
        return Vec::new();
    };
    let tried = match client
        .call_json(reqwest::Method::POST, "/checks/try", &serde_json::json!({}))
        .await
    {
        Ok(tried) => tried,
        Err(error) => {
            return vec![check(
                "repo checks",
                Status::Warn,
                format!("cannot try them: {error:#}"),
                None,
            )];
        }
    };
    let trials = tried["checks"].as_array().cloned().unwrap_or_default();
    if trials.is_empty() {
        return vec![check(
            "repo checks",
            Status::Warn,
            "pushpals.toml names no checks: tasks are not tested",
            Some("add [checks] test = \"...\" (and build, lint) to pushpals.toml"),
        )];
    }
    trials
        .iter()
        .map(|trial| {
            let name = format!("check {}", trial["name"].as_str().unwrap_or("?"));
            let command = trial["command"].as_str().unwrap_or("?");
            if trial["passed"] == true {
                check(
                    &name,
                    Status::Ok,
                    format!("`{command}` passes in the sandbox"),
                    None,
                )
            } else {
                check(
                    &name,
                    Status::Fail,
                    format!(
                        "`{command}` does not pass in the sandbox: {}",
                        trial["diagnosis"].as_str().unwrap_or("it failed")
                    ),
                    Some("`pushpals checks` shows its output"),
                )
            }
        })
        .collect()
}

fn git_check() -> Check {
    let output = std::process::Command::new("git").arg("--version").output();
    let Ok(output) = output else {
        return check(
            "git",
            Status::Fail,
            "git is not installed",
            Some("apt-get install git"),
        );
    };
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let version: Vec<u32> = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .split('.')
        .take(2)
        .filter_map(|n| n.parse().ok())
        .collect();
    if version.as_slice() >= [2, 38].as_slice() {
        check("git", Status::Ok, text, None)
    } else {
        check(
            "git",
            Status::Fail,
            format!("{text}: merges need git 2.38 or newer"),
            Some("install a newer git"),
        )
    }
}

fn disk_check(data_dir: &Path) -> Check {
    let probe = if data_dir.exists() {
        data_dir
    } else {
        Path::new("/")
    };
    match rustix::fs::statvfs(probe) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let shown = format!(
                "{:.1} GiB free for {}",
                free as f64 / f64::from(1u32 << 30),
                data_dir.display()
            );
            if free < LOW_DISK {
                check(
                    "disk",
                    Status::Warn,
                    shown,
                    Some("free space or move the data directory with --data-dir"),
                )
            } else {
                check("disk", Status::Ok, shown, None)
            }
        }
        Err(error) => check(
            "disk",
            Status::Warn,
            format!("cannot read free space: {error}"),
            None,
        ),
    }
}

/// How a task's worktree is made: an overlay where this machine can mount
/// one, else a full checkout (named, with why).
fn task_start_check(data_dir: &Path) -> Check {
    if std::fs::create_dir_all(data_dir).is_err() {
        return check(
            "task start",
            Status::Warn,
            format!("cannot write {}", data_dir.display()),
            Some("make the data directory writable"),
        );
    }
    match pushpals_workspace::Overlays::probe(data_dir) {
        Ok(_) => check(
            "task start",
            Status::Ok,
            "each task's worktree is an overlay over a shared checkout of its base commit",
            None,
        ),
        Err(reason) => check(
            "task start",
            Status::Ok,
            format!("each task's worktree is a full checkout: no overlay ({reason})"),
            Some(
                "overlays need the right to mount (run the server as root, or give it CAP_SYS_ADMIN); large repositories start tasks much faster with them",
            ),
        ),
    }
}

/// How warm caches reach new tasks on the data directory's file system.
fn cache_copy_check(data_dir: &Path) -> Check {
    let probe = data_dir.join("caches");
    if std::fs::create_dir_all(&probe).is_err() {
        return check(
            "warm caches",
            Status::Warn,
            format!("cannot write {}", probe.display()),
            Some("make the data directory writable"),
        );
    }
    match pushpals_orchestrator::cache_copy_method(&probe) {
        pushpals_orchestrator::CopyMethod::Reflink => check(
            "warm caches",
            Status::Ok,
            "copied into each task as clones that share blocks (reflink)",
            None,
        ),
        pushpals_orchestrator::CopyMethod::Copy => check(
            "warm caches",
            Status::Ok,
            format!(
                "copied in full into each task: the file system of {} cannot clone files",
                data_dir.display()
            ),
            Some(
                "for copy-on-write task starts, put the data directory on btrfs or XFS (--data-dir)",
            ),
        ),
    }
}

fn sandbox_check(settings: &Settings, data_dir: &Path) -> Check {
    // The runner stages its /etc in the data directory; before the first
    // start, a private scratch directory stands in.
    let scratch = std::env::temp_dir().join(format!("pushpals-doctor-{}", std::process::id()));
    let state_dir = if data_dir.is_dir() {
        data_dir.to_path_buf()
    } else {
        let _ = std::fs::create_dir_all(&scratch);
        scratch.clone()
    };
    let chosen = choose_runner(settings, &state_dir);
    let _ = std::fs::remove_dir_all(&scratch);
    match chosen {
        Ok(runner) if runner.isolated() => check(
            "sandbox",
            Status::Ok,
            format!(
                "{} runs commands in isolation (a probe command ran)",
                runner.backend()
            ),
            None,
        ),
        Ok(_) => check(
            "sandbox",
            Status::Warn,
            "backend \"none\": commands run WITHOUT isolation",
            Some("remove [sandbox] backend = \"none\" from config.toml"),
        ),
        Err(error) => check(
            "sandbox",
            Status::Fail,
            format!("{error:#}"),
            Some("see the message; `serve` refuses to start until it is fixed"),
        ),
    }
}

fn landlock_check() -> Check {
    match pushpals_sandbox::helper::landlock_abi() {
        Some(abi) => check(
            "landlock",
            Status::Ok,
            format!("Landlock ABI {abi}: a second layer under the sandbox's mounts"),
            None,
        ),
        None => check(
            "landlock",
            Status::Warn,
            "this kernel has no Landlock; the sandbox relies on its namespaces and mounts alone",
            Some("use a kernel with Landlock (5.13+, `lsm=landlock,...`)"),
        ),
    }
}

fn cgroup_check() -> Check {
    match pushpals_sandbox::CgroupLayout::detect() {
        Some(layout) => check(
            "cgroups",
            Status::Ok,
            format!("{layout}: process and memory limits hold"),
            None,
        ),
        None => check(
            "cgroups",
            Status::Warn,
            "no writable cgroup hierarchy with the pids controller",
            Some(
                "as root, make /sys/fs/cgroup writable; as a normal user, delegate a cgroup (systemd: Delegate=yes)",
            ),
        ),
    }
}

/// Warn when the certificate has fewer days left than this.
const RENEW_DAYS: i64 = 14;

fn tls_check(settings: &Settings, data_dir: &Path) -> Check {
    if let (None, Some(acme)) = (&settings.tls, &settings.acme) {
        let files = pushpals_server::acme::files(&data_dir.join("acme"));
        if !files.cert.exists() {
            return check(
                "tls",
                Status::Ok,
                format!(
                    "[acme] for {}: `serve` orders the certificate at start",
                    acme.domains.join(", ")
                ),
                None,
            );
        }
        return certificate_check(&files);
    }
    let Some(tls) = &settings.tls else {
        return check(
            "tls",
            Status::Warn,
            "no [tls]: serve on loopback only, or behind a TLS proxy (phones need HTTPS for notifications)",
            Some("see the README's TLS section (certificate files, or `pushpals tls init`)"),
        );
    };
    certificate_check(&pushpals_server::tls::TlsFiles {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
    })
}

/// The certificate loads with its key, and how long it has left.
fn certificate_check(files: &pushpals_server::tls::TlsFiles) -> Check {
    match files.load().and_then(|_| files.expires()) {
        Ok(expires) => {
            let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
            let shown = format!(
                "{} and its key load; it expires in {days} days ({})",
                files.cert.display(),
                pushpals_core::timestamp::format_utc(expires)
            );
            if days < RENEW_DAYS {
                check(
                    "tls",
                    Status::Warn,
                    shown,
                    Some(
                        "renew the certificate soon; the server picks up new files without a restart",
                    ),
                )
            } else {
                check("tls", Status::Ok, shown, None)
            }
        }
        Err(error) => check(
            "tls",
            Status::Fail,
            error.to_string(),
            Some("fix the files named; `serve` refuses to start until then"),
        ),
    }
}

/// External agents: each configured one must be installed and have a
/// model of its protocol; the built-in adapters are reported either way.
fn agent_checks(settings: &Settings) -> Vec<Check> {
    use pushpals_agent::external;
    let search: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut names: Vec<String> = settings.agents.keys().cloned().collect();
    names.extend(settings.agent.external.clone());
    names.extend(external::builtin().iter().map(|a| a.name().to_owned()));
    names.sort();
    names.dedup();
    let mut checks = Vec::new();
    for name in names {
        let configured = settings.agents.get(&name).cloned().unwrap_or_default();
        let wanted =
            settings.agents.contains_key(&name) || settings.agent.external.as_ref() == Some(&name);
        let label = format!("agent {name}");
        let adapter = match external::adapter(&name, configured.command.as_deref()) {
            Ok(adapter) => adapter,
            Err(error) => {
                checks.push(check(&label, Status::Fail, error, None));
                continue;
            }
        };
        let program = match external::find_program(
            adapter.as_ref(),
            configured.program.as_deref(),
            &search,
        ) {
            Ok(program) => program,
            Err(error) if wanted => {
                checks.push(check(
                    &label,
                    Status::Fail,
                    error,
                    Some(adapter.install_hint()),
                ));
                continue;
            }
            Err(_) => {
                checks.push(check(
                    &label,
                    Status::Ok,
                    format!("not installed (optional; `{}`)", adapter.install_hint()),
                    None,
                ));
                continue;
            }
        };
        let model = configured
            .model
            .clone()
            .unwrap_or_else(|| settings.agent.worker_model.clone());
        let translated = match settings.models.get(&model) {
            Some(config)
                if config.protocol != adapter.protocol() && configured.command.is_none() =>
            {
                format!(
                    "; it speaks {} and model {model:?} {}: the gateway translates (text and tool calls)",
                    adapter.protocol().as_str(),
                    config.protocol.as_str()
                )
            }
            _ => String::new(),
        };
        checks.push(check(
            &label,
            Status::Ok,
            format!(
                "found at {} (runs only in the sandbox){translated}",
                program.display()
            ),
            None,
        ));
    }
    checks
}

async fn model_checks(settings: &Settings) -> Vec<Check> {
    if settings.models.is_empty() {
        return vec![check(
            "models",
            Status::Warn,
            "no model configured: command tasks work; agent tasks and planning from chat need one",
            Some("add [models.strong] and [models.fast] to config.toml (see the README)"),
        )];
    }
    let mut checks = Vec::new();
    for (name, config) in &settings.models {
        let mut quick = config.clone();
        quick.max_retries = 0;
        quick.timeout_secs = 20;
        quick.max_output_tokens = 8;
        quick.stream = false;
        let label = format!("model {name}");
        let client = match ModelClient::new(name, quick) {
            Ok(client) => client,
            Err(error) => {
                checks.push(check(
                    &label,
                    Status::Fail,
                    error.to_string(),
                    Some("export the key's variable before starting the server"),
                ));
                continue;
            }
        };
        let request = ModelRequest {
            system: "Answer with one word.".into(),
            messages: vec![Message::user("Say OK.")],
            tools: Vec::new(),
        };
        match tokio::time::timeout(Duration::from_secs(25), client.complete(&request)).await {
            Ok(Ok(_)) => checks.push(check(
                &label,
                Status::Ok,
                format!("{} at {} answers", config.model, config.base_url),
                None,
            )),
            Ok(Err(error)) => checks.push(check(
                &label,
                Status::Fail,
                error.to_string(),
                Some("check base_url, the model name and the key"),
            )),
            Err(_) => checks.push(check(
                &label,
                Status::Fail,
                "no answer in 25 s",
                Some("check that the model server runs and base_url points at it"),
            )),
        }
    }
    checks
}

async fn server_check(server: &str) -> Check {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build();
    let url = format!("{}/healthz", server.trim_end_matches('/'));
    let reached = match client {
        Ok(client) => client
            .get(&url)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false),
        Err(_) => false,
    };
    if reached {
        check("server", Status::Ok, format!("{server} answers"), None)
    } else {
        check(
            "server",
            Status::Warn,
            format!("nothing answers at {server}"),
            Some("start it with `pushpals serve`, or pass --server"),
        )
    }
}

/// Prints the checks, one line each; returns whether nothing required failed.
pub fn print(checks: &[Check]) -> bool {
    for c in checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        say!("{mark} {:<14} {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            say!("     {:<14} fix: {fix}", "");
        }
    }
    checks.iter().all(|c| c.status != Status::Fail)
}
