//! Judging an agent's tool calls before they run: an agent's hook asks the
//! gateway, the gateway asks the task's [`Judge`] (the orchestrator, with
//! the same policy and approvals as every command), and the answer goes
//! back in the agent's own hook format.

use super::Gateway;
use super::errors::error;
use super::routes::ClientProtocol;
use crate::external::claude_code;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A tool call an agent is about to make.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// The agent's name for the tool (`Bash`, `Edit`, `Write`, ...).
    pub tool: String,
    /// Its input as the agent wrote it.
    pub input: Value,
}

/// The judge's answer, with the reason the agent is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It may run.
    Allow(String),
    /// It may not.
    Deny(String),
}

/// A boxed future, so judges can sit behind `Arc<dyn Judge>`.
pub type JudgeFuture = Pin<Box<dyn Future<Output = Verdict> + Send>>;

/// Decides an agent's tool calls for one task; an `ask` waits inside
/// `judge` until the person answers.
pub trait Judge: Send + Sync {
    /// Judges one tool call.
    fn judge(&self, tool: ToolUse) -> JudgeFuture;
}

/// The task's judge, for a caller with its token.
fn judge_for(
    gateway: &Gateway,
    protocol: ClientProtocol,
    headers: &HeaderMap,
) -> Result<Arc<dyn Judge>, Box<Response>> {
    let (token, _, _) = super::forward::admit(gateway, protocol, headers, None)?;
    gateway.judge_of(&token).ok_or_else(|| {
        Box::new(error(
            protocol,
            StatusCode::CONFLICT,
            "this task has no judge for tool calls",
        ))
    })
}

/// `POST /pushpals/v1/judge`: any agent's hook or plugin asks about one
/// tool call, `{"tool": "Bash", "input": {"command": "..."}}` (tools as
/// Claude Code names them), and gets `{"decision": "allow" | "deny",
/// "reason": "..."}`.
pub(crate) async fn judge(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let protocol = ClientProtocol::OpenaiChat;
    let judge = match judge_for(&gateway, protocol, &headers) {
        Ok(judge) => judge,
        Err(response) => return *response,
    };
    let asked = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|asked| {
            Some(ToolUse {
                tool: asked["tool"].as_str()?.to_owned(),
                input: asked["input"].clone(),
            })
        });
    let Some(tool) = asked else {
        return error(
            protocol,
            StatusCode::BAD_REQUEST,
            "write the question as {\"tool\": \"Bash\", \"input\": {\"command\": \"...\"}}",
        );
    };
    let (decision, reason) = match judge.judge(tool).await {
        Verdict::Allow(reason) => ("allow", reason),
        Verdict::Deny(reason) => ("deny", reason),
    };
    Json(serde_json::json!({ "decision": decision, "reason": reason })).into_response()
}

/// `POST /pushpals/v1/hooks/claude-code`: Claude Code's pre-tool-use hook.
pub(crate) async fn claude_code_hook(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let protocol = ClientProtocol::Anthropic;
    let judge = match judge_for(&gateway, protocol, &headers) {
        Ok(judge) => judge,
        Err(response) => return *response,
    };
    let asked = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|hook| claude_code::hook_tool_use(&hook));
    let Some(tool) = asked else {
        return error(
            protocol,
            StatusCode::BAD_REQUEST,
            "the hook's input is not a pre-tool-use call (tool_name and tool_input)",
        );
    };
    let verdict = judge.judge(tool).await;
    Json(claude_code::hook_answer(&verdict)).into_response()
}
