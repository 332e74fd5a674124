//! `pushpals serve`: the orchestrator and its HTTP server.

use crate::cli::ServeArgs;
use crate::paths;
use anyhow::{Context, Result, bail};
use pushpals_core::payload::ServerStarted;
use pushpals_core::{Actor, NewEvent};
use pushpals_orchestrator::{Orchestrator, Settings};
use pushpals_policy::{Policy, RuleSet};
use pushpals_sandbox::{
    BwrapConfig, BwrapRunner, ContainerConfig, ContainerRunner, HostRunner, Runner,
};
use pushpals_server::tls::{TlsFiles, TlsListener};
use pushpals_server::webpush::Vapid;
use pushpals_server::{AppState, ensure_admin_token};
use pushpals_store::{DataDirLock, Store};
use pushpals_workspace::Repo;
use std::path::Path;
use std::sync::Arc;

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs, data_dir: Option<&Path>) -> Result<()> {
    let repo = match &args.repo {
        Some(path) => Some(Repo::open(path).await?),
        None => None,
    };
    let config_path = paths::config_file(args.config.as_deref())?;
    let settings = load_settings(&config_path, args.config.is_some())?;
    let _telemetry = crate::telemetry::init(Some(&settings.telemetry))?;
    let data_dir = paths::data_dir(data_dir)?;
    raise_open_files_limit();
    // Listen first: a start that cannot listen leaves no data dir behind.
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "{} is already in use: is another server running? pick another with --addr",
            args.addr
        ),
        Err(error) => return Err(error).context(format!("cannot listen on {}", args.addr)),
    };

    let _lock = DataDirLock::acquire(&data_dir)?;
    let database = settings
        .store
        .database(args.database.as_deref(), &data_dir)
        .map_err(anyhow::Error::msg)?;
    let store = Store::open_database(
        &database,
        settings.durability().map_err(anyhow::Error::msg)?,
    )?;
    tracing::info!(store = %database, "the store is open");
    ensure_admin_token(&store, &data_dir).await?;
    let policy = load_policy(&config_path)?;
    let runner = choose_runner(&settings, &data_dir)?;
    let orchestrator =
        Orchestrator::start(store.clone(), repo, runner, settings, policy, &data_dir).await?;

    let tls = tls_files(&orchestrator.settings(), &data_dir).await?;
    let insecure = tls.is_none() && !args.addr.ip().is_loopback();
    if insecure && !args.insecure_http {
        bail!(
            "{} can be reached from other machines, and without TLS the tokens would cross the network \
             in the clear: set [tls] cert and key in config.toml (see the README), serve on 127.0.0.1 \
             behind a TLS proxy, or pass --insecure-http to accept the risk",
            args.addr
        );
    }
    orchestrator.set_user_policy_file(config_path.with_file_name("policy.toml"));
    orchestrator.spawn_retention();
    orchestrator.spawn_scanner();
    let secrets_file = config_path.with_file_name("secrets.toml");
    if let Ok(text) = std::fs::read_to_string(&secrets_file) {
        orchestrator.add_secret_rules(&text, &secrets_file.display().to_string())?;
    }
    let address = listener.local_addr()?;
    let started = NewEvent::typed(
        None,
        Actor::Orchestrator,
        &ServerStarted {
            repos: orchestrator
                .repositories()
                .all()
                .iter()
                .map(|served| served.name().to_owned())
                .collect(),
            addr: address.to_string(),
            runner_backend: orchestrator.runner_backend().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    )?;
    store.write(move |tx| tx.append(started)).await?;

    let scheme = if tls.is_some() { "https" } else { "http" };
    let served = orchestrator.repositories().all();
    if served.is_empty() {
        eprintln!(
            "Push Pals is serving no repository yet: add one with `pushpals repo add URL|PATH` \
             (or start with --repo PATH)"
        );
    } else {
        eprintln!("Push Pals is serving:");
        for repo in &served {
            eprintln!(
                "  {:<11} {}  (task start: {})",
                format!("{}:", repo.name()),
                repo.record.origin.as_deref().unwrap_or(&repo.record.path),
                repo.task_start
            );
        }
    }
    for (name, why) in orchestrator.repositories().unavailable() {
        eprintln!("  WARNING:    repository {name} cannot be used: {why}");
    }
    eprintln!(
        "  API:        {scheme}://{address}/api/v1/  (token in {})",
        data_dir.join("admin.token").display()
    );
    eprintln!(
        "  companion:  {scheme}://{address}/  (pair a phone with `pushpals pair --scope approve`)"
    );
    if insecure {
        eprintln!(
            "  WARNING:    plain HTTP on a reachable address: tokens cross the network in the clear"
        );
    }
    eprintln!("  data:       {}", data_dir.display());
    eprintln!(
        "  parallel:   {} tasks at once",
        orchestrator.max_parallel()
    );
    let per_task = if orchestrator.runner_backend() == "bubblewrap"
        && orchestrator.settings().sandbox.resident
    {
        ", one sandbox per task kept up while it works"
    } else {
        ""
    };
    eprintln!(
        "  commands:   run under {}{per_task}",
        orchestrator.runner_backend()
    );
    if orchestrator.runner_backend().starts_with("host") {
        eprintln!("  WARNING:    sandbox backend \"none\": commands run WITHOUT isolation");
    }
    eprintln!("Stop with Ctrl-C.");

    let subject = orchestrator
        .settings()
        .notify
        .push_subject
        .clone()
        .unwrap_or_else(|| "mailto:pushpals@localhost".to_owned());
    let vapid = Vapid::load_or_create(&data_dir, subject).with_context(|| {
        format!(
            "cannot read or make {}",
            data_dir.join("vapid.key").display()
        )
    })?;
    let metrics_addr = orchestrator.settings().server.metrics_addr;
    let mut state = AppState::new(orchestrator.clone()).with_push(vapid);
    state.insecure_http = insecure;
    state.config_file = Some(config_path.clone());
    tokio::spawn(reload_on_change(state.clone(), config_path.clone()));
    if let Some(addr) = metrics_addr {
        let metrics_listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on [server] metrics_addr {addr}"))?;
        eprintln!(
            "  metrics:    http://{}/metrics  (no token: keep this address private)",
            metrics_listener.local_addr()?
        );
        let metrics_state = state.clone();
        tokio::spawn(async move {
            if let Err(error) =
                pushpals_server::serve_metrics(metrics_listener, metrics_state).await
            {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    match tls {
        Some(files) => {
            let listener = TlsListener::new(listener, files)?;
            pushpals_server::serve(listener, state, shutdown_signal()).await?;
        }
        None => pushpals_server::serve(listener, state, shutdown_signal()).await?,
    }
    orchestrator.release_worktrees().await;
    eprintln!("Push Pals stopped; running tasks will show as interrupted at the next start.");
    Ok(())
}

/// The certificate files to serve: `[tls]`'s, or `[acme]`'s after making
/// sure they hold a certificate with time left (ordering one if not; a
/// background task renews it); `None` for plain HTTP.
async fn tls_files(settings: &Settings, data_dir: &Path) -> Result<Option<TlsFiles>> {
    if let Some(files) = &settings.tls {
        return Ok(Some(TlsFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }));
    }
    let Some(acme) = &settings.acme else {
        return Ok(None);
    };
    let config = pushpals_server::acme::AcmeConfig {
        domains: acme.domains.clone(),
        contact: acme.contact.clone(),
        directory: acme.directory.clone(),
        directory_ca: acme.directory_ca.clone(),
        challenge_addr: acme.challenge_addr,
    };
    let dir = data_dir.join("acme");
    let issued = pushpals_server::acme::ensure_certificate(&config, &dir).await?;
    let files = pushpals_server::acme::files(&dir);
    let expires = files
        .expires()
        .map(pushpals_core::timestamp::format_utc)
        .unwrap_or_default();
    eprintln!(
        "  certificate: {} for {} from {} (expires {expires})",
        if issued { "new" } else { "kept" },
        config.domains.join(", "),
        config.directory
    );
    tokio::spawn(pushpals_server::acme::renew_forever(config, dir));
    Ok(Some(files))
}

/// Reads the settings file; a missing default file means defaults, a
/// missing file named explicitly is an error.
pub(crate) fn load_settings(path: &Path, explicit: bool) -> Result<Settings> {
    match std::fs::read_to_string(path) {
        Ok(text) => Settings::from_toml(&text)
            .map_err(|message| anyhow::anyhow!("{}: {message}", path.display())),
        Err(error)
            if !explicit
                && matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
        {
            Ok(Settings::default())
        }
        Err(error) => Err(error).context(format!("cannot read {}", path.display())),
    }
}

/// The command runner the settings ask for; refuses rather than running
/// commands without isolation that nobody asked for.
pub(crate) fn choose_runner(settings: &Settings, data_dir: &Path) -> Result<Arc<dyn Runner>> {
    if settings.sandbox.unconfined() {
        tracing::warn!("sandbox backend \"none\": commands run without isolation");
        return Ok(Arc::new(HostRunner));
    }
    if let (Some(engine), Some(image)) = (
        settings.sandbox.backend.container_engine(),
        &settings.sandbox.image,
    ) {
        let config = ContainerConfig {
            engine: engine.to_owned(),
            image: image.clone(),
            runtime: settings.sandbox.container_runtime.clone(),
            limits: settings.sandbox.limits(),
        };
        return Ok(Arc::new(ContainerRunner::new(config)?));
    }
    // The person's additions (checked when the settings loaded): paths
    // read-only, their `bin` on PATH, and variables passed through.
    let mut toolchain_paths = Vec::new();
    for path in &settings.sandbox.read_only_paths {
        if path.join("bin").is_dir() {
            toolchain_paths.push(path.join("bin"));
        }
        toolchain_paths.push(path.clone());
    }
    let toolchain_env = settings
        .sandbox
        .pass_env
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok()?;
            Some((name.clone(), value))
        })
        .collect();
    let config = BwrapConfig {
        limits: settings.sandbox.limits(),
        toolchain_paths,
        home_binds: Vec::new(),
        toolchain_env,
        state_dir: Some(data_dir.to_path_buf()),
        helper: std::env::current_exe()
            .ok()
            .map(|exe| (exe, vec!["sandbox-helper".to_owned()])),
        fresh_per_command: !settings.sandbox.resident,
    }
    .with_default_toolchains();
    Ok(Arc::new(BwrapRunner::new(config)?))
}

/// Built-in rules plus the user's `policy.toml` beside `config.toml`.
pub(crate) fn load_policy(config_path: &Path) -> Result<Policy> {
    let policy = Policy::builtin()?;
    let user_file = config_path.with_file_name("policy.toml");
    match std::fs::read_to_string(&user_file) {
        Ok(text) => {
            let rules = RuleSet::from_toml(&text, &user_file.display().to_string())?;
            Ok(policy.with_user_rules(rules))
        }
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(policy)
        }
        Err(error) => Err(error).context(format!("cannot read {}", user_file.display())),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
}

/// Raises the open-files soft limit to the hard one (at most 1,048,576):
/// every connection is a file, and with the usual soft default of 1,024 a
/// few hundred idle clients would leave the server unable to accept.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(1 << 20, |hard| hard.min(1 << 20));
    if limit.current.is_some_and(|soft| soft >= wanted) {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: Some(wanted),
        maximum: limit.maximum,
    };
    if let Err(error) = setrlimit(Resource::Nofile, raised) {
        tracing::warn!(%error, "cannot raise the open-files limit");
    }
}

/// Reloads `config.toml` when it changes (checked every two seconds): new
/// settings apply to what starts next, and the log says which changes
/// need a restart. A file that does not parse changes nothing.
async fn reload_on_change(state: AppState, path: std::path::PathBuf) {
    let stamp = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen = stamp(&path);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match pushpals_server::reload_settings(&state, Actor::Orchestrator).await {
            Ok(reload) if reload.restart_needed.is_empty() => {
                tracing::info!(applied = ?reload.applied, "config.toml changed: reloaded");
            }
            Ok(reload) => tracing::warn!(
                applied = ?reload.applied,
                restart_needed = ?reload.restart_needed,
                "config.toml changed: reloaded; restart `pushpals serve` for the rest"
            ),
            Err(error) => tracing::warn!(%error, "config.toml changed but cannot be used"),
        }
    }
}
