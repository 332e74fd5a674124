//! Errors in the shape each protocol's clients read, so an agent shows the
//! gateway's message rather than a parse failure.

use super::routes::ClientProtocol;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the gateway.
pub(crate) fn error(protocol: ClientProtocol, status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        501 => "not_implemented",
        502..=504 => "api_error",
        _ => "invalid_request_error",
    };
    let body = match protocol {
        ClientProtocol::Anthropic => json!({
            "type": "error",
            "error": { "type": kind, "message": message },
        }),
        ClientProtocol::Gemini => json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "status": status.canonical_reason().unwrap_or("ERROR").to_uppercase().replace(' ', "_"),
            },
        }),
        ClientProtocol::OpenaiChat | ClientProtocol::OpenaiResponses => json!({
            "error": { "message": message, "type": kind, "code": status.as_u16() },
        }),
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn each_protocol_gets_its_own_error_shape() {
        let anthropic = body(error(
            ClientProtocol::Anthropic,
            StatusCode::UNAUTHORIZED,
            "no",
        ))
        .await;
        assert_eq!(anthropic["type"], "error");
        assert_eq!(anthropic["error"]["type"], "authentication_error");
        let openai = body(error(
            ClientProtocol::OpenaiChat,
            StatusCode::BAD_REQUEST,
            "spent",
        ))
        .await;
        assert_eq!(openai["error"]["message"], "spent");
        let gemini = body(error(
            ClientProtocol::Gemini,
            StatusCode::NOT_IMPLEMENTED,
            "x",
        ))
        .await;
        assert_eq!(gemini["error"]["code"], 501);
        assert_eq!(gemini["error"]["status"], "NOT_IMPLEMENTED");
    }
}
