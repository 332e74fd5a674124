//! `POST /api/v1/chat`: talk to the orchestrator.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_orchestrator::ChatReply;
use serde::Deserialize;

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
        .await?;
    Ok(Json(reply))
}
