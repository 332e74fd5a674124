//! A worker host taking work: it asks the server for its next instruction,
//! clones a run's base (`worker_base.rs`), runs each command
//! it is given in its own sandbox (the clone's `.git` read-only to it),
//! and sends the output, what the command changed (each run is mirrored
//! command by command: `worker_mirror.rs`) and its end.
//!
//! Every send is tried again while the server cannot be reached (so a cut
//! connection loses nothing and, as chunks and reports are numbered, sends
//! nothing twice); a 409 means the run is no longer this worker's, and it
//! is dropped.

use super::worker_base::{Starting, start_run};
use super::worker_command::{Command, report_warm, start_command};
use super::worker_sending::{MOST_BACKOFF, send_artifacts};
use super::worker_warm::WarmCaches;
use crate::client::Client;
use anyhow::{Context, Result, bail};
use pushpals_core::worker_wire::{Asking, HeldRun, Instruction};
use pushpals_sandbox::Runner;
use reqwest::{Method, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The run this worker holds.
struct Held {
    task: String,
    lease: u64,
    dir: PathBuf,
    /// The repository's name on the server.
    repo: String,
    /// The tree its warm cache is being built in, while it is.
    building: Option<PathBuf>,
    /// The running command's number, its stop switch and its task.
    running: Option<(u64, watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

/// Takes and does work until the server refuses this worker's token.
pub(crate) async fn take_work(
    client: Arc<Client>,
    runner: Arc<dyn Runner>,
    home: &Path,
    name: &str,
    slots: u32,
) -> Result<()> {
    let runs = home.join("runs");
    // Clones of runs a stopped worker held are not its any more.
    if runs.exists() {
        std::fs::remove_dir_all(&runs)
            .with_context(|| format!("cannot clear {}", runs.display()))?;
    }
    std::fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let warm = Arc::new(WarmCaches::new(home.join("warm")));
    // So are the warm caches they were building.
    warm.drop_all_builds();
    // The runs it holds, by task.
    let mut held: std::collections::HashMap<String, Held> = std::collections::HashMap::new();
    let mut wait = Duration::from_millis(250);
    loop {
        let asking = Asking {
            holding: held
                .values()
                .map(|h| HeldRun {
                    task: h.task.clone(),
                    lease: h.lease,
                })
                .collect(),
            slots: Some(slots),
            agents: super::worker_agent::offered(),
        };
        let response = client
            .request(Method::POST, "/workers/next")
            .timeout(Duration::from_secs(45))
            .json(&asking)
            .send()
            .await;
        let instruction = match response {
            Ok(r) if r.status() == StatusCode::NO_CONTENT => continue,
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                bail!(
                    "the server no longer takes worker {name}'s token (revoked?): ask an admin \
                     for a new enrolment token, remove this host's worker/token and start again"
                )
            }
            Ok(r) if r.status().is_success() => {
                wait = Duration::from_millis(250);
                match r.json::<Instruction>().await {
                    Ok(instruction) => instruction,
                    Err(error) => {
                        say!(
                            "The server sent an instruction this worker does not know ({error}); is it another version?"
                        );
                        tokio::time::sleep(MOST_BACKOFF).await;
                        continue;
                    }
                }
            }
            Ok(r) => {
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                say!(
                    "The server refused to give work: {} (HTTP {})",
                    body["message"].as_str().unwrap_or("no details"),
                    status.as_u16()
                );
                tokio::time::sleep(MOST_BACKOFF).await;
                continue;
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MOST_BACKOFF);
                continue;
            }
        };
        match instruction {
            Instruction::Start {
                task,
                lease,
                repo,
                base_commit,
            } => {
                // An older run of the same task (its lease is over).
                if let Some(old) = held.remove(&task) {
                    drop_run(old, runner.as_ref(), &warm).await;
                }
                say!(
                    "Task {task} ({repo}) at {}: fetching its base.",
                    short(&base_commit)
                );
                let starting = Starting {
                    task: &task,
                    lease,
                    repo: &repo,
                    base: &base_commit,
                };
                match start_run(&client, &runs, &starting).await {
                    Ok(dir) => {
                        held.insert(
                            task.clone(),
                            Held {
                                task,
                                lease,
                                dir,
                                repo,
                                building: None,
                                running: None,
                            },
                        );
                    }
                    Err(error) => say!("Task {task}: cannot take its base: {error:#}"),
                }
            }
            Instruction::Run {
                task,
                lease,
                seq,
                command_line,
                timeout_secs,
                network,
                mirror,
                in_build,
                at_stable_path,
                env,
                cargo_home,
                agent,
            } => {
                let Some(run) = held.get_mut(&task).filter(|h| h.lease == lease) else {
                    continue;
                };
                let (stop, stopped) = watch::channel(false);
                let command = Command {
                    cwd: if in_build {
                        run.building.clone()
                    } else {
                        Some(run.dir.clone())
                    },
                    clone: run.dir.clone(),
                    stable: pushpals_orchestrator::worker_host::stable_path(&run.repo),
                    task,
                    lease,
                    seq,
                    command_line,
                    timeout_secs,
                    network,
                    mirror,
                    at_stable_path,
                    env,
                    cargo_home,
                    agent,
                };
                let started = start_command(
                    Arc::clone(&client),
                    Arc::clone(&runner),
                    &runs,
                    command,
                    stopped,
                );
                run.running = Some((seq, stop, started));
            }
            Instruction::Warm { task, lease, key } => {
                let Some(run) = held.get_mut(&task).filter(|h| h.lease == lease) else {
                    continue;
                };
                run.building = warm.build_tree(&key, &task).ok();
                let (client, warm, clone) =
                    (Arc::clone(&client), Arc::clone(&warm), run.dir.clone());
                tokio::spawn(async move {
                    let done = warm.warm(&clone, &key, &task).await;
                    report_warm(&client, &task, lease, &key, done).await;
                });
            }
            Instruction::Seal { task, lease, key } => {
                let Some(run) = held.get_mut(&task).filter(|h| h.lease == lease) else {
                    continue;
                };
                run.building = None;
                let (client, warm, clone) =
                    (Arc::clone(&client), Arc::clone(&warm), run.dir.clone());
                tokio::spawn(async move {
                    let done = warm.seal(&clone, &key, &task).await;
                    report_warm(&client, &task, lease, &key, done).await;
                });
            }
            Instruction::Cancel { task, lease, seq } => {
                if let Some(Held {
                    running: Some((running, stop, _)),
                    ..
                }) = held.get(&task).filter(|h| h.lease == lease)
                    && *running == seq
                {
                    let _ = stop.send(true);
                }
            }
            Instruction::SendArtifacts {
                task,
                lease,
                patterns,
            } => {
                let Some(run) = held.get(&task).filter(|h| h.lease == lease) else {
                    continue;
                };
                let (client, dir) = (Arc::clone(&client), run.dir.clone());
                let store = runs.join(format!("{task}.artifacts"));
                tokio::spawn(async move {
                    send_artifacts(&client, &task, lease, &dir, store, patterns).await;
                });
            }
            Instruction::Done { task, lease } => {
                if held.get(&task).is_some_and(|h| h.lease == lease)
                    && let Some(run) = held.remove(&task)
                {
                    say!("Task {task}: done here.");
                    drop_run(run, runner.as_ref(), &warm).await;
                }
            }
        }
    }
}

/// How long a stopped command may take to end before its clone is
/// removed anyway.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Stops the run's command, ends its sandbox and removes its clone (once
/// the command is over, so nothing still writes there).
async fn drop_run(run: Held, runner: &dyn Runner, warm: &WarmCaches) {
    if let Some((_, stop, started)) = run.running {
        let _ = stop.send(true);
        let _ = tokio::time::timeout(STOP_GRACE, started).await;
    }
    runner.release(&run.dir).await;
    if let Some(building) = &run.building {
        runner.release(building).await;
    }
    warm.drop_builds(&run.task);
    if let Err(error) = std::fs::remove_dir_all(&run.dir) {
        say!("cannot remove {}: {error}", run.dir.display());
    }
    // An external agent's private home, if it had one.
    if let Some(runs) = run.dir.parent() {
        let _ = std::fs::remove_dir_all(super::worker_agent::home_dir(runs, &run.task));
    }
}

/// The first 12 characters of a commit id.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
