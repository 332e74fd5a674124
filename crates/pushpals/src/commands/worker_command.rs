//! One command of a run on a worker host: run in the sandbox, its output
//! sent in numbered chunks, then (in a mirrored run) what it changed, then
//! how it ended.

use super::worker_mirror;
use super::worker_sending::{Sent, send_chunk, send_until_taken};
use crate::client::Client;
use pushpals_core::worker_wire::StepReport;
use pushpals_sandbox::{CommandSpec, OutputChunk, OutputStream, Runner};
use reqwest::Method;
use tokio::sync::{mpsc, watch};

/// The most bytes one output upload carries.
const CHUNK_BYTES: usize = 64 * 1024;

/// Tells the server command `seq` could not run, and why.
pub(super) async fn report_failure(client: &Client, task: &str, lease: u64, seq: u64, why: String) {
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
pub(super) struct Step<'a> {
    pub(super) task: &'a str,
    pub(super) lease: u64,
    pub(super) seq: u64,
    /// A mirrored run's command: the tree the clone held when it started.
    pub(super) mirrored_from: Option<String>,
}

/// Runs one command and sends its output, then (a mirrored run's) what it
/// changed, then how it ended.
pub(super) async fn run_command(
    client: &Client,
    runner: &dyn Runner,
    step: &Step<'_>,
    spec: CommandSpec,
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
    if let Some(from) = &step.mirrored_from
        && report.error.is_none()
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
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let path = format!("/workers/tasks/{task}/result");
    match send_until_taken(client, Method::POST, &path, body).await {
        Ok(Sent::Gone(why)) => say!("Task {task}: {why}"),
        Ok(Sent::Taken(_)) => {}
        Err(error) => say!("Task {task}: {error:#}"),
    }
}
