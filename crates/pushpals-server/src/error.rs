//! One error type for every handler, mapped to a status and a JSON body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushpals_orchestrator::OrchestratorError;
use pushpals_store::StoreError;
use serde_json::json;

/// An error as the client sees it: a status, a stable code and a message.
/// 5xx messages are generic; the cause is logged, not sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500; `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message the client is sent.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(detail) = self.detail {
            body["detail"] = detail;
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::TaskNotFound(_)
            | StoreError::ApprovalNotFound(_)
            | StoreError::RepositoryNotFound(_) => Self::not_found(error.to_string()),
            StoreError::RepositoryBusy { .. } => {
                Self::new(StatusCode::CONFLICT, "repository_busy", error.to_string())
            }
            StoreError::AlreadyDecided { .. }
            | StoreError::InvalidTransition(_)
            | StoreError::Duplicate(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            StoreError::DiskFull(_) => {
                tracing::error!(%error, "a write failed: the disk is full");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "disk_full",
                    error.to_string(),
                )
            }
            _ => Self::internal(error),
        }
    }
}

impl From<OrchestratorError> for ApiError {
    fn from(error: OrchestratorError) -> Self {
        match error {
            OrchestratorError::Store(store_error) => store_error.into(),
            OrchestratorError::InvalidInput(message) => Self::bad_request(message),
            OrchestratorError::NotFound(message) => Self::not_found(message),
            OrchestratorError::Forbidden(message) => Self::forbidden(message),
            OrchestratorError::WrongState { .. } | OrchestratorError::NoPendingApproval(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            OrchestratorError::SeveralPending { ref pending, .. } => {
                let detail = serde_json::to_value(pending).ok();
                let mut api_error =
                    Self::new(StatusCode::CONFLICT, "several_pending", error.to_string());
                api_error.detail = detail;
                api_error
            }
            OrchestratorError::SecretsBlocked { ref findings, .. } => {
                let detail = serde_json::to_value(findings).ok();
                let mut api_error =
                    Self::new(StatusCode::CONFLICT, "secrets_blocked", error.to_string());
                api_error.detail = detail;
                api_error
            }
            OrchestratorError::DeliveryBlocked(message) => {
                Self::new(StatusCode::CONFLICT, "delivery_blocked", message)
            }
            OrchestratorError::DeliveryInProgress(_) => Self::new(
                StatusCode::CONFLICT,
                "delivery_in_progress",
                error.to_string(),
            ),
            OrchestratorError::UnsupportedAction(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported",
                error.to_string(),
            ),
            OrchestratorError::Remote(message) => {
                Self::new(StatusCode::BAD_GATEWAY, "remote_failed", message)
            }
            OrchestratorError::Unavailable(message) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            OrchestratorError::Git(_)
            | OrchestratorError::Internal(_)
            | OrchestratorError::Encode(_) => Self::internal(error),
        }
    }
}
