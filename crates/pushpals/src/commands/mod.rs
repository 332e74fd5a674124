//! What each command does.

mod audit;
mod backup;
mod grants;
mod log;
mod pairing;
mod progress;
mod repos;
mod scan;
mod service;
mod space;
mod store;
mod tasks;
mod tls;
mod worker_agent;
mod worker_base;
mod worker_command;
mod worker_host;
mod worker_mirror;
mod worker_sending;
mod worker_toolchains;
mod worker_warm;
mod worker_work;
pub(crate) use worker_host::connection as worker_connection;
pub(crate) use worker_toolchains::toolchains as worker_toolchains;
mod workers;

use crate::cli::{Cli, Command, StoreAction, TlsAction, WorkerAction, WorkerArgs};
use crate::client::Client;
use crate::paths;
use anyhow::Result;
use std::process::ExitCode;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let Cli {
        data_dir,
        server,
        command,
    } = cli;
    if let Command::Serve(args) = command {
        crate::serve::serve(args, data_dir.as_deref()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Tls {
        action: TlsAction::Init { names, out, config },
    } = &command
    {
        let config_path = paths::config_file(config.as_deref())?;
        let dir = match out {
            Some(dir) => dir.clone(),
            None => config_path.with_file_name("tls"),
        };
        tls::init(names, &dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(command, Command::Backup { .. } | Command::Restore { .. }) {
        store_is_sqlite()?;
    }
    if let Command::Backup { file } = &command {
        let data = paths::data_dir(data_dir.as_deref())?;
        backup::backup(&data, file)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Restore { file } = &command {
        let data = paths::data_dir(data_dir.as_deref())?;
        backup::restore(&data, file).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Store {
        action:
            StoreAction::Migrate {
                to,
                from,
                config,
                json,
            },
    } = &command
    {
        let data = paths::data_dir(data_dir.as_deref())?;
        store::migrate_store(&data, to, from.as_deref(), config.as_deref(), *json).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Worker(WorkerArgs {
        action: None,
        token,
        config,
        slots,
    }) = &command
    {
        let data = paths::data_dir(data_dir.as_deref())?;
        let host = worker_host::Host {
            server: &server,
            data_dir: &data,
            enrolment: token.as_deref(),
            config: config.as_deref(),
            slots: *slots,
        };
        return worker_host::run(&host).await;
    }
    if let Command::Service { action } = &command {
        service::run(action, data_dir.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Doctor { config, json } = &command {
        let config_path = paths::config_file(config.as_deref())?;
        let data = paths::data_dir(data_dir.as_deref())?;
        let checks = crate::doctor::run(&config_path, config.is_some(), &data, &server).await;
        let healthy = checks
            .iter()
            .all(|c| c.status != crate::doctor::Status::Fail);
        if *json {
            print_json(&serde_json::json!({ "healthy": healthy, "checks": checks }));
        } else {
            crate::doctor::print(&checks);
        }
        return Ok(if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let data_dir = paths::data_dir(data_dir.as_deref())?;
    let client = Client::new(&server, &data_dir)?;
    match command {
        Command::Serve(_)
        | Command::SandboxHelper { .. }
        | Command::Doctor { .. }
        | Command::Tls { .. }
        | Command::Service { .. }
        | Command::Store { .. }
        | Command::Backup { .. }
        | Command::Restore { .. } => Ok(ExitCode::SUCCESS),
        Command::Task(args) => tasks::task(&client, args).await,
        Command::Status { task, json } => tasks::status(&client, task, json).await,
        Command::Diff { task, json } => tasks::diff(&client, &task, json).await,
        Command::Log { task, follow, json } => log::log(&client, &task, follow, json).await,
        Command::Approve(args) => tasks::decide(&client, args, "approve").await,
        Command::Deny(args) => tasks::decide(&client, args, "deny").await,
        Command::Cancel { task, json } => tasks::cancel(&client, &task, json).await,
        Command::Merge { task } => tasks::merge(&client, &task).await,
        Command::Continue {
            task,
            run,
            feedback,
            approve_run,
            json,
        } => tasks::continue_task(&client, &task, run.or(feedback), approve_run, json).await,
        Command::Chat { message, json } => tasks::chat(&client, &message.join(" "), json).await,
        Command::Grant { kind, repo } => grants::change(&client, &kind, repo, true).await,
        Command::Revoke { kind, repo } => grants::change(&client, &kind, repo, false).await,
        Command::Grants { repo, json } => grants::list(&client, repo, json).await,
        Command::Repo { action } => repos::repo(&client, action).await,
        Command::Reload { json } => grants::reload(&client, json).await,
        Command::Checks { repo, json } => scan::try_checks(&client, repo, json).await,
        Command::FalsePositive {
            task,
            fingerprint,
            reason,
        } => tasks::false_positive(&client, &task, &fingerprint, &reason).await,
        Command::Audit { action } => audit::audit(&client, action).await,
        Command::Pair { scope, url, json } => {
            pairing::pair(&client, &scope, url.as_deref().unwrap_or(&server), json).await
        }
        Command::Devices { revoke, json } => pairing::devices(&client, revoke, json).await,
        Command::Worker(WorkerArgs {
            action:
                Some(WorkerAction::Token {
                    name,
                    labels,
                    ttl_secs,
                    json,
                }),
            ..
        }) => workers::token(&client, &name, &labels, ttl_secs, json).await,
        Command::Worker(WorkerArgs { action: None, .. }) => Ok(ExitCode::SUCCESS),
        Command::Workers { revoke, json } => {
            workers::workers(&client, revoke.as_deref(), json).await
        }
        Command::Gc {
            older_than_days,
            dry_run,
            json,
        } => space::gc(&client, older_than_days, dry_run, json).await,
        Command::Du { json } => space::du(&client, json).await,
        Command::Scan {
            changed,
            repo,
            json,
        } => scan::scan(&client, changed, repo, json).await,
        Command::Propose { findings, json } => scan::propose(&client, findings, json).await,
        Command::Findings { kind, all, json } => scan::findings(&client, kind, all, json).await,
        Command::Dismiss {
            fingerprint,
            reason,
        } => scan::dismiss(&client, &fingerprint, &reason).await,
    }
}

/// Prints a JSON value, pretty.
pub(crate) fn print_json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    crate::terminal::write_raw(&format!("{text}\n"));
}

/// Refuses `backup` and `restore` (SQLite's) when config.toml keeps the
/// store in PostgreSQL, saying what to use instead.
fn store_is_sqlite() -> Result<()> {
    let config_path = paths::config_file(None)?;
    let settings = crate::serve::load_settings(&config_path, false)?;
    if settings.store.url.is_some() {
        anyhow::bail!(
            "the store is in PostgreSQL ([store] url in {}): back it up with pg_dump, or copy it \
             into a data directory with `pushpals store migrate --to DIR`; `backup` and \
             `restore` handle SQLite's file",
            config_path.display()
        );
    }
    Ok(())
}
