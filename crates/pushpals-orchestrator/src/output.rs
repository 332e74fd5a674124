//! Running one command for a task and recording it as events: start,
//! output in chunks, end with the full output in a blob.

use pushpals_core::payload::{CommandFinished, CommandStarted, OutputWritten};
use pushpals_core::{Actor, NewEvent, TaskId};
use pushpals_sandbox::{CommandOutcome, CommandSpec, OutputChunk, OutputStream, RunError, Runner};
use pushpals_store::{Store, StoreResult};
use pushpals_workspace::SecretScanner;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Output is flushed into an event at this size...
const CHUNK_BYTES: usize = 16 * 1024;
/// ...or this long after its first unflushed byte.
const CHUNK_DELAY: Duration = Duration::from_millis(50);
/// Output beyond this many bytes per command is not sent as events, only
/// kept in the blob.
const INLINE_LIMIT: usize = 256 * 1024;
/// Output beyond this many bytes per command is counted but not kept.
const BLOB_LIMIT: usize = 16 * 1024 * 1024;

/// What one recorded command came to.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// How it ended.
    pub outcome: CommandOutcome,
    /// The last lines of its output, for failure reasons.
    pub tail: String,
    /// Its output as stored (redacted, bounded), as text.
    pub output: String,
}

/// A copy of a command's output as it comes, for a reader of its own (an
/// external agent's output stream).
pub(crate) struct Tap(pub mpsc::UnboundedSender<OutputChunk>);

/// Runs `spec` through `runner` as step `step` of a task and records it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_recorded(
    store: &Store,
    runner: &dyn Runner,
    scanner: &SecretScanner,
    task_id: &TaskId,
    step: &str,
    spec: CommandSpec,
    cancel: watch::Receiver<bool>,
    tap: Option<Tap>,
) -> StoreResult<Result<Recorded, RunError>> {
    let actor = || Actor::Worker(task_id.clone());
    let started = NewEvent::typed(
        Some(task_id),
        actor(),
        &CommandStarted {
            step: step.to_owned(),
            command: spec.command_line.clone(),
            backend: runner.backend().to_owned(),
            timeout_secs: Some(spec.timeout.as_secs()),
            warning: (!runner.isolated()).then(|| {
                "this command runs WITHOUT isolation (sandbox backend \"none\")".to_owned()
            }),
        },
    )?;
    store.write(move |tx| tx.append(started)).await?;

    let (sender, receiver) = mpsc::channel(64);
    let span = tracing::info_span!("command", step, backend = runner.backend());
    let run = tracing::Instrument::instrument(runner.run(spec, sender, cancel), span);
    let record = record_output(store, scanner, task_id, step, receiver, tap);
    let (result, recording) = tokio::join!(run, record);
    let recording = recording?;

    let outcome = match result {
        Ok(outcome) => outcome,
        Err(run_error) => {
            let failed = NewEvent::typed(
                Some(task_id),
                actor(),
                &CommandFinished {
                    step: step.to_owned(),
                    error: Some(run_error.to_string()),
                    ..CommandFinished::default()
                },
            )?;
            store.write(move |tx| tx.append(failed)).await?;
            return Ok(Err(run_error));
        }
    };
    // What is stored passes the redaction first; bytes that are not text
    // are kept as they came only when no secret shows in their text form.
    let blob = match scanner.redact(&String::from_utf8_lossy(&recording.kept)) {
        std::borrow::Cow::Borrowed(_) => recording.kept,
        std::borrow::Cow::Owned(redacted) => redacted.into_bytes(),
    };
    let total_bytes = recording.total_bytes;
    let tail = tail_of(&blob, 20);
    let output = String::from_utf8_lossy(&blob).into_owned();
    let mut finished = CommandFinished {
        step: step.to_owned(),
        outcome: Some(outcome.describe()),
        error: None,
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        timed_out: outcome.timed_out,
        cancelled: outcome.cancelled,
        duration_ms: Some(u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX)),
        output_bytes: Some(u64::try_from(total_bytes).unwrap_or(u64::MAX)),
        output_truncated: total_bytes > BLOB_LIMIT,
        output_blob: None,
    };
    let task = task_id.clone();
    store
        .write(move |tx| {
            if !blob.is_empty() {
                finished.output_blob = Some(tx.put_blob(&blob)?);
            }
            tx.append(NewEvent::typed(
                Some(&task),
                Actor::Worker(task.clone()),
                &finished,
            )?)
        })
        .await?;
    Ok(Ok(Recorded {
        outcome,
        tail,
        output,
    }))
}

struct Recording {
    kept: Vec<u8>,
    total_bytes: usize,
}

/// Coalesces chunks into `output` events and keeps the whole output.
async fn record_output(
    store: &Store,
    scanner: &SecretScanner,
    task_id: &TaskId,
    step: &str,
    mut receiver: mpsc::Receiver<OutputChunk>,
    tap: Option<Tap>,
) -> StoreResult<Recording> {
    let mut kept = Vec::new();
    let mut total_bytes = 0usize;
    let mut events = OutputEvents {
        store,
        scanner,
        task_id,
        step,
        pending: None,
        carry: [Vec::new(), Vec::new()],
        inline_bytes: 0,
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, receiver.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    events.flush(false).await?;
                    deadline = None;
                    continue;
                }
            },
            None => receiver.recv().await,
        };
        let Some(chunk) = next else { break };
        if let Some(Tap(tap)) = &tap {
            let _ = tap.send(chunk.clone());
        }
        total_bytes += chunk.bytes.len();
        let room = BLOB_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk.bytes[..chunk.bytes.len().min(room)]);
        if events.inline_bytes >= INLINE_LIMIT {
            continue;
        }
        if events
            .pending
            .as_ref()
            .is_some_and(|(stream, _)| *stream != chunk.stream)
        {
            events.flush(false).await?;
        }
        let buffer = &mut events
            .pending
            .get_or_insert_with(|| (chunk.stream, Vec::new()))
            .1;
        buffer.extend_from_slice(&chunk.bytes);
        if buffer.len() >= CHUNK_BYTES {
            events.flush(false).await?;
            deadline = None;
        } else if deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + CHUNK_DELAY);
        }
    }
    events.flush(true).await?;
    for stream in [OutputStream::Stdout, OutputStream::Stderr] {
        events.pending = Some((stream, Vec::new()));
        events.flush(true).await?;
    }
    Ok(Recording { kept, total_bytes })
}

/// Turns buffered output into `output` events.
struct OutputEvents<'a> {
    store: &'a Store,
    scanner: &'a SecretScanner,
    task_id: &'a TaskId,
    step: &'a str,
    /// Bytes of one stream not yet written.
    pending: Option<(OutputStream, Vec<u8>)>,
    /// Per stream (stdout, stderr): the start of a UTF-8 sequence cut at
    /// the end of the last event, prepended to that stream's next one.
    carry: [Vec<u8>; 2],
    /// Bytes sent as events so far.
    inline_bytes: usize,
}

impl OutputEvents<'_> {
    /// Writes the pending bytes as one `output` event. A UTF-8 sequence cut
    /// at the end waits for the stream's next bytes unless `at_end`; bytes
    /// that are not UTF-8 become U+FFFD in the event (the blob keeps them as
    /// they were).
    async fn flush(&mut self, at_end: bool) -> StoreResult<()> {
        let Some((stream, mut bytes)) = self.pending.take() else {
            return Ok(());
        };
        let carry = &mut self.carry[usize::from(stream == OutputStream::Stderr)];
        if !carry.is_empty() {
            bytes.splice(0..0, carry.drain(..));
        }
        if !at_end {
            let cut = incomplete_utf8_suffix(&bytes);
            carry.extend(bytes.drain(bytes.len() - cut..));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.inline_bytes += bytes.len();
        let written = OutputWritten {
            step: self.step.to_owned(),
            stream: stream.as_str().to_owned(),
            text: self
                .scanner
                .redact(&String::from_utf8_lossy(&bytes))
                .into_owned(),
            continues_in_blob: self.inline_bytes >= INLINE_LIMIT,
        };
        let event = NewEvent::typed(
            Some(self.task_id),
            Actor::Worker(self.task_id.clone()),
            &written,
        )?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(())
    }
}

/// How many bytes at the end of `bytes` start a UTF-8 sequence that is not
/// complete yet (0 to 3).
fn incomplete_utf8_suffix(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => 0,
        Err(error) if error.error_len().is_none() => bytes.len() - error.valid_up_to(),
        Err(_) => {
            // Invalid bytes inside; only look at the last three bytes.
            let start = bytes.len().saturating_sub(3);
            (start..bytes.len())
                .find(|&i| {
                    let tail = &bytes[i..];
                    matches!(std::str::from_utf8(tail), Err(e) if e.error_len().is_none() && e.valid_up_to() == 0)
                })
                .map_or(0, |i| bytes.len() - i)
        }
    }
}

/// The last `lines` lines of `output`, as text.
fn tail_of(output: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_utf8_sequence_is_detected() {
        let euro = "€".as_bytes();
        assert_eq!(incomplete_utf8_suffix(b"abc"), 0);
        assert_eq!(incomplete_utf8_suffix(&[b'a', euro[0], euro[1]]), 2);
        assert_eq!(incomplete_utf8_suffix(&[0xff, b'a', euro[0]]), 1);
        assert_eq!(incomplete_utf8_suffix(&[b'a', 0xff]), 0);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_of(b"1\n2\n3\n", 2), "2\n3");
        assert_eq!(tail_of(b"", 2), "");
    }
}
