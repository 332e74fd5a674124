//! One command of a run on a worker host: where it runs (the clone, or the
//! warm cache being built) and at which path the sandbox shows it, its
//! network relayed to the server, run in the sandbox, its output sent in
//! numbered chunks, then (in a mirrored run) what it changed, then how it
//! ended.

use super::worker_agent;
use super::worker_mirror;
use super::worker_sending::{Sent, relay_connections, send_chunk, send_until_taken};
use crate::client::Client;
use pushpals_core::worker_wire::{AgentLaunch, Mirror, StepReport, WarmReport};
use pushpals_sandbox::{CommandSpec, OutputChunk, OutputStream, Runner};
use reqwest::Method;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A command the server gave, and where it runs.
pub(super) struct Command {
    pub(super) task: String,
    pub(super) lease: u64,
    pub(super) seq: u64,
    pub(super) command_line: String,
    pub(super) timeout_secs: u64,
    pub(super) network: bool,
    pub(super) mirror: Option<Mirror>,
    /// The tree it runs in: the clone, or the cache being built (none
    /// when the server asked for a build that is not here).
    pub(super) cwd: Option<PathBuf>,
    /// The run's clone.
    pub(super) clone: PathBuf,
    /// Where the tree appears in the sandbox.
    pub(super) stable: PathBuf,
    pub(super) at_stable_path: bool,
    pub(super) env: Vec<(String, String)>,
    pub(super) cargo_home: Option<String>,
    /// An external agent's command.
    pub(super) agent: Option<AgentLaunch>,
}

/// Starts `command` on its own tokio task: its network relay, its tree
/// made ready, run, reported. The task's handle.
pub(super) fn start_command(
    client: Arc<Client>,
    runner: Arc<dyn Runner>,
    runs: &Path,
    command: Command,
    stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (task, lease, seq) = (command.task.clone(), command.lease, command.seq);
    // Granted network, the command's connections go to the server's proxy
    // through this worker's connection; an agent's to the model gateway.
    type Relayed = Option<(PathBuf, tokio::task::JoinHandle<()>)>;
    let relay = |wanted: bool, kind: &str| -> Result<Relayed, String> {
        if !wanted {
            return Ok(None);
        }
        let socket = runs.join(format!("{task}-{seq}.{kind}"));
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(|e| format!("cannot open its {kind} relay: {e}"))?;
        let path = format!("/workers/tasks/{task}/{kind}?lease={lease}&seq={seq}");
        Ok(Some((
            socket,
            relay_connections(Arc::clone(&client), listener, path),
        )))
    };
    let network = relay(command.network, "network");
    let gateway = relay(command.agent.as_ref().is_some_and(|a| a.gateway), "gateway");
    let home = worker_agent::home_dir(runs, &task);
    tokio::spawn(async move {
        // Fail closed: granted network or an agent's gateway it cannot
        // give, the command does not run.
        let relays = network.and_then(|network| Ok((network, gateway?)));
        let ready = match &relays {
            Err(why) => Err(why.clone()),
            Ok(_) => ready_tree(&command).await,
        };
        let agent = match (&ready, &command.agent) {
            (Ok(_), Some(launch)) => ready_agent(&home, launch)
                .await
                .map(|read_only| Some((launch.clone(), read_only))),
            _ => Ok(None),
        };
        let (cwd, agent, (network, gateway)) = match (ready, agent, relays) {
            (Ok(cwd), Ok(agent), Ok(relays)) => (cwd, agent, relays),
            (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => {
                say!("Task {task}: {why}");
                report_failure(&client, &task, lease, seq, why).await;
                return;
            }
        };
        let mut env = vec![("PUSHPALS_TASK".to_owned(), task.clone())];
        env.extend(command.env);
        // The clone's git directory stays out of the command's reach: its
        // config runs programs for git on this host.
        let mut read_only_paths = vec![command.clone.join(".git")];
        if let Some((_, paths)) = &agent {
            read_only_paths.extend(paths.iter().cloned());
        }
        let spec = CommandSpec {
            command_line: command.command_line,
            alias: Some(pushpals_orchestrator::worker_host::alias(
                command.stable,
                &cwd,
                command.at_stable_path,
            )),
            cwd,
            timeout: Duration::from_secs(command.timeout_secs),
            env,
            read_only_paths,
            network_proxy: network.as_ref().map(|(socket, _)| socket.clone()),
            gateway: gateway.as_ref().map(|(socket, _)| socket.clone()),
            home: agent.as_ref().map(|_| home.clone()),
            session: None,
        };
        let step = Step {
            task: &task,
            lease,
            seq,
            mirrored_from: command.mirror.map(|m| m.tree),
        };
        let trajectory = agent.and_then(|(launch, _)| launch.trajectory);
        let record = trajectory.as_deref().map(|file| (home.as_path(), file));
        run_command(&client, runner.as_ref(), &step, spec, record, stopped).await;
        for (socket, relaying) in [network, gateway].into_iter().flatten() {
            relaying.abort();
            let _ = std::fs::remove_file(socket);
        }
    })
}

/// Makes an agent's private home and finds what its program needs: the
/// paths the sandbox shows read-only.
async fn ready_agent(home: &Path, launch: &AgentLaunch) -> Result<Vec<PathBuf>, String> {
    let (home, launch) = (home.to_path_buf(), launch.clone());
    tokio::task::spawn_blocking(move || {
        worker_agent::make_home(&home, &launch)?;
        worker_agent::read_only_paths(&launch.name)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{e:#}"))
}

/// Makes the command's tree ready: a mirrored run's clone brought to the
/// server's files, a setup's cargo home made. The tree, or why not.
async fn ready_tree(command: &Command) -> Result<PathBuf, String> {
    let Some(cwd) = command.cwd.clone() else {
        return Err("there is no build of a warm cache here to run it in".into());
    };
    if let Some(mirror) = &command.mirror {
        worker_mirror::bring_to(&cwd, mirror)
            .await
            .map_err(|e| format!("{e:#}"))?;
    }
    if let Some(config) = &command.cargo_home {
        pushpals_orchestrator::worker_host::prepare_cargo_home(&cwd, config)
            .map_err(|e| format!("cannot prepare the setup's cargo home: {e}"))?;
    }
    Ok(cwd)
}

/// Tells the server what became of a warm cache.
pub(super) async fn report_warm(
    client: &Client,
    task: &str,
    lease: u64,
    key: &str,
    done: anyhow::Result<WarmReport>,
) {
    let report = match done {
        Ok(report) => {
            if report.used {
                say!(
                    "Task {task}: warm cache {} ({} files).",
                    short_key(key),
                    report.files
                );
            }
            WarmReport { lease, ..report }
        }
        Err(error) => {
            say!("Task {task}: warm cache {}: {error:#}", short_key(key));
            WarmReport {
                lease,
                key: key.to_owned(),
                error: Some(format!("{error:#}")),
                ..WarmReport::default()
            }
        }
    };
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let path = format!("/workers/tasks/{task}/warm");
    match send_until_taken(client, Method::POST, &path, body).await {
        Ok(Sent::Gone(why)) => say!("Task {task}: {why}"),
        Ok(Sent::Taken(_)) => {}
        Err(error) => say!("Task {task}: {error:#}"),
    }
}

fn short_key(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

/// The most bytes one output upload carries.
const CHUNK_BYTES: usize = 64 * 1024;

/// Tells the server command `seq` could not run, and why.
async fn report_failure(client: &Client, task: &str, lease: u64, seq: u64, why: String) {
    let report = StepReport {
        lease,
        seq,
        error: Some(why),
        ..StepReport::default()
    };
    let path = format!("/workers/tasks/{task}/result");
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let _ = send_until_taken(client, Method::POST, &path, body).await;
}

/// Which command of which run.
struct Step<'a> {
    task: &'a str,
    lease: u64,
    seq: u64,
    /// A mirrored run's command: the tree the clone held when it started.
    mirrored_from: Option<String>,
}

/// Runs one command and sends its output, then (a mirrored run's) what it
/// changed, then how it ended.
async fn run_command(
    client: &Client,
    runner: &dyn Runner,
    step: &Step<'_>,
    spec: CommandSpec,
    record: Option<(&Path, &str)>,
    stopped: watch::Receiver<bool>,
) {
    let (task, lease, seq) = (step.task, step.lease, step.seq);
    let dir = spec.cwd.clone();
    let (sender, mut receiver) = mpsc::channel::<OutputChunk>(64);
    let run = runner.run(spec, sender, stopped);
    let send_output = async {
        let mut chunk = 0u64;
        let mut gone: Option<String> = None;
        let mut pending: Option<(OutputStream, Vec<u8>)> = None;
        loop {
            let next = match receiver.try_recv() {
                Ok(next) => Some(next),
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing more waiting: what is gathered goes now.
                    if let Some((stream, bytes)) = pending.take()
                        && gone.is_none()
                    {
                        gone =
                            send_chunk(client, task, lease, seq, &mut chunk, stream, bytes).await;
                    }
                    receiver.recv().await
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            };
            let Some(next) = next else { break };
            if gone.is_some() {
                // The run is gone: the output is read and dropped, so the
                // command is not held up writing it.
                continue;
            }
            match &mut pending {
                Some((stream, bytes)) if *stream == next.stream && bytes.len() < CHUNK_BYTES => {
                    bytes.extend(next.bytes);
                }
                _ => {
                    if let Some((stream, bytes)) = pending.replace((next.stream, next.bytes)) {
                        gone =
                            send_chunk(client, task, lease, seq, &mut chunk, stream, bytes).await;
                    }
                }
            }
        }
        if let Some((stream, bytes)) = pending.take()
            && gone.is_none()
        {
            gone = send_chunk(client, task, lease, seq, &mut chunk, stream, bytes).await;
        }
        (chunk, gone)
    };
    let (ended, (chunks, gone)) = tokio::join!(run, send_output);
    if let Some(why) = gone {
        say!("Task {task}: {why}");
        return;
    }
    let mut report = StepReport {
        lease,
        seq,
        chunks,
        ..StepReport::default()
    };
    match ended {
        Ok(outcome) => {
            report.exit_code = outcome.exit_code;
            report.signal = outcome.signal;
            report.timed_out = outcome.timed_out;
            report.cancelled = outcome.cancelled;
            report.duration_ms = u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX);
        }
        Err(error) => report.error = Some(error.to_string()),
    }
    // A stopped command's run is over (cancelled or dropped): what it
    // changed is not wanted, and its clone is about to go.
    if let Some(from) = &step.mirrored_from
        && report.error.is_none()
        && !report.cancelled
    {
        match worker_mirror::send_changes(client, &dir, task, lease, seq, from).await {
            Ok(tree) => report.tree = tree,
            Err(worker_mirror::Gone::RunGone(why)) => {
                say!("Task {task}: {why}");
                return;
            }
            Err(worker_mirror::Gone::Failed(why)) => {
                say!("Task {task}: {why}");
                report.error = Some(why);
            }
        }
    }
    // An agent's record in its home goes back with its end.
    if let Some((home, file)) = record {
        match worker_agent::read_trajectory(home, file) {
            Ok(text) => report.trajectory = text,
            Err(error) => say!("Task {task}: the agent's record: {error:#}"),
        }
    }
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let path = format!("/workers/tasks/{task}/result");
    match send_until_taken(client, Method::POST, &path, body).await {
        Ok(Sent::Gone(why)) => say!("Task {task}: {why}"),
        Ok(Sent::Taken(_)) => {}
        Err(error) => say!("Task {task}: {error:#}"),
    }
}
