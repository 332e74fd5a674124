//! `POST /api/v1/chat`: talk to the orchestrator; `GET /api/v1/chat`: this
//! device's history, kept on the server so it follows a reload.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_orchestrator::ChatReply;
use pushpals_store::chat::Speaker;
use serde::Deserialize;
use serde_json::{Value, json};

/// How much of one message the history keeps.
const HISTORY_CHARS: usize = 16 * 1024;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// What the person says.
    pub message: String,
}

/// Answers at once from the orchestrator's state; new work is planned in
/// the background (its tasks follow as `plan_created` on the event stream).
#[utoipa::path(
    post,
    path = "/chat",
    tag = "chat",
    request_body = ChatMessage,
    responses((status = 200, description = "the answer; new work is planned in the background", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn chat(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChatMessage>,
) -> Result<Json<ChatReply>, ApiError> {
    caller.require(Scope::Operate)?;
    let may_approve = caller.require(Scope::Approve).is_ok();
    let reply = state
        .orchestrator
        .chat(&body.message, caller.actor(), may_approve)
        .await;
    // The exchange joins the device's history, a refusal too, so the chat
    // shows what was answered.
    let answer = match &reply {
        Ok(reply) => reply.reply.clone(),
        Err(error) => format!("⚠ {error}"),
    };
    // A message refused for its length is kept only in part.
    let message = match body.message.char_indices().nth(HISTORY_CHARS) {
        Some((cut, _)) => format!("{}…", &body.message[..cut]),
        None => body.message.clone(),
    };
    let device = caller.name.clone();
    state
        .store()
        .write(move |tx| {
            tx.record_chat(
                &device,
                &[(Speaker::Person, &message), (Speaker::PushPals, &answer)],
            )
        })
        .await?;
    Ok(Json(reply?))
}

/// Paging of the history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryPage {
    /// At most this many of the newest lines (default 200, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// This device's chat: its newest lines, oldest first (`who` is `me` or
/// `them`).
#[utoipa::path(
    get,
    path = "/chat",
    tag = "chat",
    params(HistoryPage),
    responses((status = 200, description = "the history, oldest first", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<HistoryPage>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = super::page_limit(page.limit, 200, 500, "")?;
    let lines = state.store().chat_history(&caller.name, limit).await?;
    Ok(Json(json!({ "lines": lines })))
}
