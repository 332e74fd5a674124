//! An external agent's steps as events of its task: read from its output
//! stream as it comes (or from its record at the end), with what the end
//! needs remembered: its session, its last words, its verdict.

use pushpals_agent::external::{self, ExternalAgent, Step};
use pushpals_core::payload::{AgentStep, EventPayload};
use pushpals_core::{Actor, NewEvent, TaskId};
use pushpals_sandbox::OutputStream;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Turns the agent's standard output into step events as it comes;
/// returns the recorder, which knows how the agent said its run ended.
pub(crate) async fn record_steps(
    mut recorder: StepRecorder,
    adapter: Arc<dyn ExternalAgent>,
    mut chunks: mpsc::UnboundedReceiver<pushpals_sandbox::OutputChunk>,
) -> StepRecorder {
    let mut pending = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        if chunk.stream != OutputStream::Stdout {
            continue;
        }
        pending.extend_from_slice(&chunk.bytes);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            for step in adapter.parse_line(line.trim_end()) {
                recorder.record(step).await;
            }
        }
    }
    let rest = String::from_utf8_lossy(&pending);
    for step in adapter.parse_line(rest.trim_end()) {
        recorder.record(step).await;
    }
    recorder.flush().await;
    recorder
}

/// Records the steps an agent's structured session reports.
pub(crate) async fn record_session_steps(
    mut recorder: StepRecorder,
    mut steps: mpsc::UnboundedReceiver<Step>,
) -> StepRecorder {
    while let Some(step) = steps.recv().await {
        recorder.record(step).await;
    }
    recorder.flush().await;
    recorder
}

/// Records an agent's steps as events of its task, remembering what the
/// end needs: the agent's session, its last words, and its verdict.
pub(crate) struct StepRecorder {
    max_text: usize,
    store: pushpals_store::Store,
    scanner: pushpals_workspace::SecretScanner,
    task: TaskId,
    session: Option<String>,
    last_message: Option<String>,
    /// Pieces of a message being streamed, written as one message.
    parts: String,
    /// How the agent said its run ended: succeeded, and its summary.
    pub finished: Option<(bool, String)>,
}

impl StepRecorder {
    pub(crate) fn new(
        store: pushpals_store::Store,
        scanner: pushpals_workspace::SecretScanner,
        task: TaskId,
        max_text: usize,
    ) -> Self {
        Self {
            max_text,
            store,
            scanner,
            task,
            session: None,
            last_message: None,
            parts: String::new(),
            finished: None,
        }
    }

    /// Writes a message still being streamed when the output ends.
    async fn flush(&mut self) {
        if !self.parts.is_empty() {
            let said = std::mem::take(&mut self.parts);
            self.record(Step::Message { text: said }).await;
        }
    }

    fn text(&self, t: &str) -> String {
        self.scanner
            .redact(&external::cut(t, self.max_text))
            .into_owned()
    }

    /// Records one step.
    pub(crate) async fn record(&mut self, step: Step) {
        if let Step::MessagePart { text } = step {
            self.parts.push_str(&text);
            return;
        }
        if !self.parts.is_empty() {
            let said = std::mem::take(&mut self.parts);
            Box::pin(self.record(Step::Message { text: said })).await;
        }
        let task = &self.task;
        let event = match step {
            Step::MessagePart { .. } => return,
            Step::Started { session, model } => {
                if session.is_some() && session == self.session {
                    // Agents that announce their session at every step.
                    return;
                }
                self.session = session.clone().or(self.session.take());
                worker_event(
                    task,
                    &AgentStep {
                        session,
                        model,
                        ..AgentStep::named("init")
                    },
                )
            }
            Step::Message { text: said } => {
                let said = self.text(&said);
                self.last_message = Some(said.clone());
                worker_event(
                    task,
                    &AgentStep {
                        text: Some(said),
                        ..AgentStep::named("message")
                    },
                )
            }
            Step::ToolCall { id, tool, input } => worker_event(
                task,
                &AgentStep {
                    call_id: Some(id),
                    tool: Some(tool),
                    input: Some(self.text(&input.to_string())),
                    file: input["file_path"]
                        .as_str()
                        .or(input["path"].as_str())
                        .map(str::to_owned),
                    command: input["command"].as_str().map(|c| self.text(c)),
                    ..AgentStep::named("tool_call")
                },
            ),
            Step::ToolResult {
                id,
                output,
                is_error,
            } => worker_event(
                task,
                &AgentStep {
                    call_id: Some(id),
                    output: Some(self.text(&output)),
                    is_error: Some(is_error),
                    ..AgentStep::named("tool_result")
                },
            ),
            Step::Finished {
                ok,
                summary,
                session,
                turns,
            } => {
                // Agents that end without a summary: their last words.
                let summary = if summary.trim().is_empty() {
                    self.last_message.clone().unwrap_or_default()
                } else {
                    self.text(&summary)
                };
                let session = session.or(self.session.clone());
                self.finished = Some((ok, summary.clone()));
                let finished = pushpals_core::payload::AgentFinished {
                    ok: Some(ok),
                    summary,
                    session,
                    turns,
                    usage: None,
                };
                worker_event(task, &finished)
            }
        };
        let Some(event) = event else { return };
        if let Err(error) = self.store.write(move |tx| tx.append(event)).await {
            tracing::error!(%error, "cannot record an agent step");
        }
    }
}

/// The task's worker's event of this payload; `None` (and a log line) when
/// it cannot be encoded.
fn worker_event<T: EventPayload>(task: &TaskId, payload: &T) -> Option<NewEvent> {
    NewEvent::typed(Some(task), Actor::Worker(task.clone()), payload)
        .inspect_err(|error| tracing::error!(%error, "cannot encode an agent step"))
        .ok()
}
