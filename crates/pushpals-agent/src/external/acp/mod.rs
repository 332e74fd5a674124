//! The Agent Client Protocol, client side: one session with an agent that
//! speaks it (JSON-RPC 2.0, one message per line, over the agent's standard
//! input and output). Push Pals opens a session in the worktree, sends the
//! prompt, turns the agent's updates into steps, and answers its permission
//! requests with the task's judge, so every shell command and file write
//! the agent asks for passes Push Pals's policy.
//!
//! Over 400 lines: the ACP client's one exchange loop (session set-up, updates, permission
//! requests, steps) reads best whole; tool-call bookkeeping is in `calls`.

mod calls;

use super::Step;
use crate::gateway::{Judge, ToolUse, Verdict};
use calls::Announced;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The protocol version Push Pals speaks.
const PROTOCOL_VERSION: u64 = 1;

/// Longest tool output kept in a step.
const MAX_RESULT: usize = 4096;

/// How a session begins.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    /// The first turn of a new session: the whole task.
    pub prompt: &'a str,
    /// The task's earlier session and the turn to send in it (what came
    /// since), for an agent that can load sessions; a new session with
    /// `prompt` when it cannot, or its load fails.
    pub resume: Option<(&'a str, &'a str)>,
}

/// Runs a session over `stream`: the opening turn, then one more turn for
/// each message `more` has when a turn ends (messages from the person or
/// other tasks that came meanwhile). The agent's steps go to `steps`,
/// ending with [`Step::Finished`].
pub async fn run_session<S>(
    stream: S,
    cwd: &str,
    opening: Opening<'_>,
    judge: &dyn Judge,
    steps: &mpsc::UnboundedSender<Step>,
    more: &(dyn Fn() -> Option<String> + Send + Sync),
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut session = Session {
        lines: BufReader::new(reader).lines(),
        writer,
        next_id: 0,
        announced: Announced::default(),
        replaying: false,
    };
    let initialized = session
        .call(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "clientCapabilities": { "fs": { "readTextFile": false, "writeTextFile": false } },
            }),
            judge,
            steps,
        )
        .await?;
    if initialized["protocolVersion"].as_u64() != Some(PROTOCOL_VERSION) {
        return Err(format!(
            "the agent speaks ACP version {}, Push Pals version {PROTOCOL_VERSION}",
            initialized["protocolVersion"]
        ));
    }
    let loadable = initialized["agentCapabilities"]["loadSession"].as_bool() == Some(true);
    let mut loaded = None;
    if let Some((earlier, follow_up)) = opening.resume.filter(|_| loadable) {
        // The agent replays the session's history while loading it: steps
        // that were recorded in their time.
        session.replaying = true;
        let answer = session
            .call(
                "session/load",
                json!({ "sessionId": earlier, "cwd": cwd, "mcpServers": [] }),
                judge,
                steps,
            )
            .await;
        session.replaying = false;
        match answer {
            Ok(_) => loaded = Some((earlier.to_owned(), follow_up.to_owned())),
            Err(why) => {
                let _ = steps.send(Step::Message {
                    text: format!(
                        "(the agent could not load its earlier session {earlier}: {why}; a new one was opened)"
                    ),
                });
            }
        }
    }
    let (session_id, mut turn) = match loaded {
        Some(opened) => opened,
        None => {
            let created = session
                .call(
                    "session/new",
                    json!({ "cwd": cwd, "mcpServers": [] }),
                    judge,
                    steps,
                )
                .await?;
            let id = created["sessionId"]
                .as_str()
                .ok_or("session/new answered without a sessionId")?
                .to_owned();
            (id, opening.prompt.to_owned())
        }
    };
    let _ = steps.send(Step::Started {
        session: Some(session_id.clone()),
        model: None,
    });
    let reason = loop {
        let ended = session
            .call(
                "session/prompt",
                json!({ "sessionId": session_id, "prompt": [{ "type": "text", "text": turn }] }),
                judge,
                steps,
            )
            .await?;
        let reason = ended["stopReason"]
            .as_str()
            .unwrap_or("end_turn")
            .to_owned();
        match more() {
            Some(message) if reason == "end_turn" => {
                let _ = steps.send(Step::Message {
                    text: format!("(delivered to the agent) {message}"),
                });
                turn = message;
            }
            _ => break reason,
        }
    };
    let _ = steps.send(Step::Finished {
        ok: reason == "end_turn",
        summary: if reason == "end_turn" {
            String::new()
        } else {
            format!("the agent stopped: {reason}")
        },
        session: Some(session_id),
        turns: None,
    });
    Ok(())
}

/// The JSON-RPC connection.
struct Session<R, W> {
    lines: tokio::io::Lines<BufReader<R>>,
    writer: W,
    next_id: u64,
    /// Tool calls announced and not yet finished.
    announced: Announced,
    /// A loaded session's history is being replayed.
    replaying: bool,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    async fn send(&mut self, message: &Value) -> Result<(), String> {
        let mut line = message.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("the agent's session closed: {e}"))?;
        self.writer
            .flush()
            .await
            .map_err(|e| format!("the agent's session closed: {e}"))
    }

    /// Sends a request and serves the agent's updates and requests until
    /// its answer comes.
    async fn call(
        &mut self,
        method: &str,
        params: Value,
        judge: &dyn Judge,
        steps: &mpsc::UnboundedSender<Step>,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await?;
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .map_err(|e| format!("reading the agent's session failed: {e}"))?
                .ok_or_else(|| format!("the agent ended its session before answering {method}"))?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match (message.get("id"), message["method"].as_str()) {
                (Some(answer), None) if answer.as_u64() == Some(id) => {
                    if let Some(error) = message.get("error") {
                        return Err(format!(
                            "the agent refused {method}: {}",
                            error["message"].as_str().unwrap_or("no reason given")
                        ));
                    }
                    return Ok(message["result"].clone());
                }
                (Some(request_id), Some("session/request_permission")) => {
                    let request_id = request_id.clone();
                    let params = &message["params"];
                    // Some agents (Gemini CLI) announce a call that needs
                    // permission only here: it is a step like any other.
                    let asked = &params["toolCall"];
                    if let Some(id) = asked["toolCallId"].as_str()
                        && !self.announced.knows(id)
                        && !calls::describes_nothing(asked)
                    {
                        let mut announced = asked.clone();
                        announced["sessionUpdate"] = json!("tool_call");
                        self.announced.note(&announced);
                        for step in update(&announced) {
                            let _ = steps.send(step);
                        }
                    }
                    let calls = self.announced.covered_by(&params["toolCall"]);
                    let answer = permission(params, &calls, judge, steps).await;
                    self.send(&json!({ "jsonrpc": "2.0", "id": request_id, "result": answer }))
                        .await?;
                }
                (Some(request_id), Some(other)) => {
                    // Capabilities Push Pals did not offer (files,
                    // terminals): refused, the agent uses its own tools.
                    let request_id = request_id.clone();
                    self.send(&json!({ "jsonrpc": "2.0", "id": request_id,
                        "error": { "code": -32601, "message": format!("{other} is not offered by Push Pals") } }))
                        .await?;
                }
                (None, Some("session/update")) if self.replaying => {}
                (None, Some("session/update")) => {
                    self.announced.note(&message["params"]["update"]);
                    for step in update(&message["params"]["update"]) {
                        let _ = steps.send(step);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The steps one `session/update` reports.
fn update(update: &Value) -> Vec<Step> {
    let text = |value: &Value| crate::conversation::text_of(value);
    match update["sessionUpdate"].as_str() {
        Some("agent_message_chunk") => vec![Step::MessagePart {
            text: update["content"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }],
        Some("tool_call") => vec![Step::ToolCall {
            id: update["toolCallId"].as_str().unwrap_or_default().to_owned(),
            tool: update["kind"].as_str().unwrap_or("other").to_owned(),
            input: tool_input(update),
        }],
        Some("tool_call_update")
            if matches!(update["status"].as_str(), Some("completed" | "failed")) =>
        {
            let output: Vec<String> = update["content"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|part| match part["type"].as_str() {
                    // An edit's result: shown as the diff it is.
                    Some("diff") => diff_text(
                        part["path"].as_str().unwrap_or("?"),
                        part["oldText"].as_str().unwrap_or_default(),
                        part["newText"].as_str().unwrap_or_default(),
                    ),
                    _ => text(&json!([part["content"]])),
                })
                .collect();
            vec![Step::ToolResult {
                id: update["toolCallId"].as_str().unwrap_or_default().to_owned(),
                output: super::cut(&output.join("\n"), MAX_RESULT),
                is_error: update["status"] == "failed",
            }]
        }
        _ => Vec::new(),
    }
}

/// A unified diff of one edit: the lines before and after that differ,
/// between the lines they share at the start and the end.
fn diff_text(path: &str, old: &str, new: &str) -> String {
    let before: Vec<&str> = old.lines().collect();
    let after: Vec<&str> = new.lines().collect();
    let same_start = before
        .iter()
        .zip(&after)
        .take_while(|(a, b)| a == b)
        .count();
    let same_end = before[same_start..]
        .iter()
        .rev()
        .zip(after[same_start..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let removed = &before[same_start..before.len() - same_end];
    let added = &after[same_start..after.len() - same_end];
    let mut out = format!(
        "--- a/{path}\n+++ b/{path}\n@@ -{},{} +{},{} @@\n",
        same_start + 1,
        removed.len(),
        same_start + 1,
        added.len()
    );
    for line in removed {
        out.push_str(&format!("-{line}\n"));
    }
    for line in added {
        out.push_str(&format!("+{line}\n"));
    }
    out
}

/// What a tool call is about: its raw input when the agent gives it, else
/// its title (the command, for shell calls) and the paths it touches.
fn tool_input(call: &Value) -> Value {
    if call["rawInput"].is_object() {
        return call["rawInput"].clone();
    }
    json!({
        "command": call["title"],
        "path": call["locations"][0]["path"],
    })
}

/// What one tool call asks to do, as the judge's tool names say it.
fn asked_of(call: &Value) -> ToolUse {
    let input = tool_input(call);
    match call["kind"].as_str() {
        Some("execute") => ToolUse {
            tool: "Bash".into(),
            input: json!({ "command": input["command"].as_str().unwrap_or_default() }),
        },
        Some("edit" | "delete" | "move") => ToolUse {
            tool: "Write".into(),
            input: json!({ "file_path": input["path"].as_str()
                .or(input["file_path"].as_str()).unwrap_or_default() }),
        },
        Some("fetch") => ToolUse {
            tool: "WebFetch".into(),
            input,
        },
        other => ToolUse {
            tool: other.unwrap_or("other").to_owned(),
            input,
        },
    }
}

/// The judge's answer to a permission request that covers `calls`, as the
/// option to select: allowed once when the judge allows every one of them,
/// rejected at the first it denies.
async fn permission(
    params: &Value,
    calls: &[Value],
    judge: &dyn Judge,
    steps: &mpsc::UnboundedSender<Step>,
) -> Value {
    let mut verdict = Verdict::Deny("the agent asked permission for nothing".into());
    for call in calls {
        verdict = judge.judge(asked_of(call)).await;
        if matches!(verdict, Verdict::Deny(_)) {
            break;
        }
    }
    let (wanted, reason) = match &verdict {
        Verdict::Allow(reason) => ("allow_once", reason),
        Verdict::Deny(reason) => ("reject_once", reason),
    };
    if let Verdict::Deny(reason) = &verdict {
        let _ = steps.send(Step::Message {
            text: format!("(Push Pals refused a tool call) {reason}"),
        });
    }
    let options = params["options"].as_array().cloned().unwrap_or_default();
    let chosen = options
        .iter()
        .find(|option| option["kind"] == wanted)
        .or_else(|| {
            // An agent without a one-time choice: the nearest of the same
            // kind, never an allow for a denial.
            let prefix = wanted.split('_').next().unwrap_or(wanted);
            options.iter().find(|option| {
                option["kind"]
                    .as_str()
                    .is_some_and(|k| k.starts_with(prefix))
            })
        });
    match chosen {
        Some(option) => {
            json!({ "outcome": { "outcome": "selected", "optionId": option["optionId"] } })
        }
        None => {
            tracing::warn!(%reason, "an ACP permission request had no option to select; cancelled");
            json!({ "outcome": { "outcome": "cancelled" } })
        }
    }
}

#[cfg(test)]
mod tests;
