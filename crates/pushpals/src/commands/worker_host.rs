//! `pushpals worker --token ENROLMENT`: the worker host's side. It checks
//! that it can run commands in its sandbox (before it spends the token),
//! enrols once and keeps its worker token in `<data-dir>/worker/token`
//! (mode 0600; a restart reuses it), then reports to the server every few
//! seconds and takes work (`worker_work`) until it is stopped or revoked.

use crate::client::Client;
use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How often the worker reports, unless `PUSHPALS_WORKER_REPORT_SECS`
/// says otherwise (1 to 300).
const REPORT_EVERY: Duration = Duration::from_secs(10);

fn report_every() -> Duration {
    std::env::var("PUSHPALS_WORKER_REPORT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=300).contains(s))
        .map_or(REPORT_EVERY, Duration::from_secs)
}
/// The longest wait between tries while the server cannot be reached.
const MOST_BACKOFF: Duration = Duration::from_secs(60);

/// What the worker says of itself.
fn report() -> Value {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    json!({
        "cores": cores,
        "version": env!("CARGO_PKG_VERSION"),
        "time": pushpals_core::timestamp::now(),
    })
}

/// Writes `text` to `path` whole, readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// What `pushpals worker` was started with.
pub struct Host<'a> {
    /// The server's URL.
    pub server: &'a str,
    /// This host's data directory (its token under `worker/`).
    pub data_dir: &'a Path,
    /// The one-time enrolment token, on the first start.
    pub enrolment: Option<&'a str>,
    /// The settings file (its `[sandbox]`).
    pub config: Option<&'a Path>,
    /// How many tasks it runs at once.
    pub slots: u32,
}

/// `worker`: enrol (once), then report and take work until stopped or
/// revoked.
pub async fn run(host: &Host<'_>) -> Result<ExitCode> {
    let Host {
        server,
        data_dir,
        enrolment,
        config,
        slots,
    } = *host;
    let config_path = crate::paths::config_file(config)?;
    let settings = crate::serve::load_settings(&config_path, config.is_some())?;
    let home = data_dir.join("worker");
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    // Fail closed: a host that cannot isolate commands does not enrol.
    let runner = crate::serve::choose_runner(&settings, data_dir).context(
        "this host cannot run commands in a sandbox, so it does not enrol as a worker \
         (`pushpals doctor` says more)",
    )?;
    if !runner.isolated() {
        bail!(
            "this host's sandbox backend is \"none\": a worker runs every command isolated; \
             remove [sandbox] backend = \"none\" from {}",
            config_path.display()
        );
    }
    let token_file = home.join("token");
    let (token, name) = match std::fs::read_to_string(&token_file) {
        Ok(saved) => {
            if enrolment.is_some() {
                say!(
                    "This host enrolled before; it goes on with its saved token ({}) and leaves \
                     the new enrolment token unused.",
                    token_file.display()
                );
            }
            let name = std::fs::read_to_string(home.join("name")).unwrap_or_default();
            (saved.trim().to_owned(), name.trim().to_owned())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let Some(enrolment) = enrolment else {
                bail!(
                    "this host has not enrolled: pass the one-time token an admin gets with \
                     `pushpals worker token --name NAME` as --token"
                );
            };
            let (token, name) = enrol(server, enrolment).await?;
            write_private(&token_file, &token)?;
            write_private(&home.join("name"), &name)?;
            (token, name)
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", token_file.display()));
        }
    };
    say!(
        "Worker {name} on {server}, sandbox {}: reporting every {} s and taking work ({slots} \
         at once).",
        runner.backend(),
        report_every().as_secs()
    );
    let client = std::sync::Arc::new(Client::with_token(server, token)?);
    tokio::select! {
        reported = report_until_stopped(&client, &name) => reported,
        worked = super::worker_work::take_work(std::sync::Arc::clone(&client), runner, &home, &name, slots) => {
            worked.map(|()| ExitCode::SUCCESS)
        }
    }
}

/// Trades the enrolment token for the worker's token and name.
async fn enrol(server: &str, enrolment: &str) -> Result<(String, String)> {
    // The enrolment route takes no bearer token; the client's is unused.
    let client = Client::with_token(server, String::new())?;
    let mut body = report();
    body["token"] = json!(enrolment.trim());
    let enrolled = client
        .call_json(Method::POST, "/workers/enrol", &body)
        .await
        .context("enrolling failed")?;
    let token = enrolled["token"].as_str().unwrap_or_default().to_owned();
    let name = enrolled["worker"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if token.is_empty() || name.is_empty() {
        bail!("the server's answer to enrolling had no token: {enrolled}");
    }
    say!("Enrolled as {name}.");
    Ok((token, name))
}

/// Reports every [`report_every`]; an unreachable server is tried again,
/// waiting longer each time; a refused token ends it.
async fn report_until_stopped(client: &Client, name: &str) -> Result<ExitCode> {
    let every = report_every();
    let mut wait = every;
    let mut said_unreachable = false;
    loop {
        let request = client
            .request(Method::POST, "/workers/heartbeat")
            .json(&report());
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                if said_unreachable {
                    say!("The server answers again.");
                    said_unreachable = false;
                }
                wait = every;
            }
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                bail!(
                    "the server no longer takes worker {name}'s token (revoked?): ask an admin \
                     for a new enrolment token, remove this host's worker/token and start again"
                );
            }
            Ok(response) => {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                bail!(
                    "the server refused the report: {} (HTTP {})",
                    body["message"].as_str().unwrap_or("no details"),
                    status.as_u16()
                );
            }
            Err(error) => {
                if !said_unreachable {
                    say!("Cannot reach the server ({error}); trying again.");
                    said_unreachable = true;
                }
                wait = (wait * 2).min(MOST_BACKOFF);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// For `doctor` on a worker host: `None` when this data directory holds no
/// worker token; else whether the server takes this worker's report, as
/// whom and with which labels, or why not.
pub(crate) async fn connection(
    server: &str,
    data_dir: &Path,
) -> Option<Result<(String, Vec<String>), String>> {
    let home = data_dir.join("worker");
    let token = std::fs::read_to_string(home.join("token")).ok()?;
    let name = std::fs::read_to_string(home.join("name")).unwrap_or_default();
    let name = name.trim();
    let client = match Client::with_token(server, token.trim().to_owned()) {
        Ok(client) => client,
        Err(error) => return Some(Err(format!("{error:#}"))),
    };
    let request = client
        .request(Method::POST, "/workers/heartbeat")
        .json(&report());
    Some(match request.send().await {
        Ok(response) if response.status().is_success() => {
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            let labels = answer["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect();
            Ok((format!("{server} takes worker {name}'s reports"), labels))
        }
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => Err(format!(
            "{server} no longer takes worker {name}'s token (revoked?)"
        )),
        Ok(response) => {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Err(format!(
                "{server} refused worker {name}'s report: {} (HTTP {})",
                body["message"].as_str().unwrap_or("no details"),
                status.as_u16()
            ))
        }
        Err(error) => Err(format!("cannot reach {server}: {error}")),
    })
}
