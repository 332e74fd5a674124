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

/// `POST /pushpals/v1/hooks/claude-code`: Claude Code's pre-tool-use hook.
pub(crate) async fn claude_code_hook(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let protocol = ClientProtocol::Anthropic;
    let token = match super::forward::admit(&gateway, protocol, &headers, None) {
        Ok((token, _, _)) => token,
        Err(response) => return *response,
    };
    let Some(judge) = gateway.judge_of(&token) else {
        return error(
            protocol,
            StatusCode::CONFLICT,
            "this task has no judge for tool calls",
        );
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
