//! The gateway's HTTP surface: one route per protocol endpoint.

use super::errors::error;
use super::{Gateway, forward};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;

/// Where any agent's hook or plugin asks the task's judge.
pub const JUDGE_PATH: &str = "/pushpals/v1/judge";

/// Largest request body an agent may send (long conversations are big).
const MAX_REQUEST: usize = 32 << 20;

/// Which protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProtocol {
    /// OpenAI Chat Completions.
    OpenaiChat,
    /// OpenAI Responses.
    OpenaiResponses,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
}

impl ClientProtocol {
    /// Its name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenaiChat => "openai_chat",
            Self::OpenaiResponses => "openai_responses",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

/// The gateway's router.
pub(crate) fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(speaking(ClientProtocol::OpenaiChat)),
        )
        .route("/v1/messages", post(speaking(ClientProtocol::Anthropic)))
        .route(
            "/v1/responses",
            post(speaking(ClientProtocol::OpenaiResponses)),
        )
        .route("/v1/models", get(models))
        .route("/v1beta/models/{*call}", post(gemini))
        .route(
            crate::external::claude_code::HOOK_PATH,
            post(super::judge::claude_code_hook),
        )
        .route(JUDGE_PATH, post(super::judge::judge))
        .fallback(unknown)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(gateway)
}

/// The handler of a protocol whose body says the model and whether to
/// stream (all but Gemini).
fn speaking(
    protocol: ClientProtocol,
) -> impl Fn(State<Arc<Gateway>>, HeaderMap, Bytes) -> BoxFuture<'static, Response> + Clone {
    move |State(gateway), headers, body| {
        Box::pin(async move {
            forward::forward(&gateway, protocol, &headers, None, Default::default(), body).await
        })
    }
}

/// `POST /v1beta/models/{model}:{method}`: Gemini's generateContent and
/// streamGenerateContent.
async fn gemini(
    State(gateway): State<Arc<Gateway>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let protocol = ClientProtocol::Gemini;
    let Some((model, method)) = call.rsplit_once(':') else {
        return error(
            protocol,
            StatusCode::NOT_FOUND,
            &format!("{call:?} is not a model call (models/<model>:<method>)"),
        );
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        other => {
            if let Err(response) = forward::admit(&gateway, protocol, &headers, uri.query()) {
                return *response;
            }
            return error(
                protocol,
                StatusCode::NOT_IMPLEMENTED,
                &format!(
                    "the Push Pals gateway serves generateContent and streamGenerateContent, not {other}"
                ),
            );
        }
    };
    let url = forward::FromUrl {
        model: Some(model.to_owned()),
        stream: Some(stream),
    };
    forward::forward(&gateway, protocol, &headers, uri.query(), url, body).await
}

/// The task's model, for clients that list models before calling.
async fn models(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    match forward::admit(&gateway, ClientProtocol::OpenaiChat, &headers, uri.query()) {
        Err(response) => *response,
        Ok((_, _, model)) => {
            let id = model.config().model.clone();
            axum::Json(json!({
                "object": "list",
                "data": [{ "id": id, "object": "model", "type": "model", "owned_by": "pushpals" }],
            }))
            .into_response()
        }
    }
}

async fn unknown(request: Request) -> Response {
    error(
        ClientProtocol::OpenaiChat,
        StatusCode::NOT_FOUND,
        &format!(
            "the Push Pals gateway has no {} {}; it serves /v1/chat/completions, /v1/responses, /v1/messages and /v1beta/models/<model>:generateContent",
            request.method(),
            request.uri().path()
        ),
    )
}
