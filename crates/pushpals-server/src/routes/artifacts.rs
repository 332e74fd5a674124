//! A task's artifacts: the list, and each file by its SHA-256. Only images
//! are shown inline; everything else (HTML reports included) is a download
//! that never runs on the companion's origin.

use super::task_id;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiPath as Path;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// `GET /api/v1/tasks/{id}/artifacts`.
#[utoipa::path(
    get,
    path = "/tasks/{id}/artifacts",
    tag = "tasks",
    params(crate::openapi::TaskPath),
    responses((status = 200, description = "the files the task's checks left, each with its path, SHA-256, size, kind (junit, coverage, image, html, file) and summary", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let id = task_id(&state, &id).await?;
    let artifacts = state.orchestrator.artifacts(&id).await?;
    Ok(Json(json!({ "task_id": id, "artifacts": artifacts })))
}

/// `GET /api/v1/tasks/{id}/artifacts/{sha256}`.
#[utoipa::path(
    get,
    path = "/tasks/{id}/artifacts/{sha256}",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "a task id", pattern = r"^[a-z0-9][a-z0-9-]{0,39}$"),
        ("sha256" = String, Path, description = "the artifact's SHA-256", pattern = r"^[0-9a-f]{64}$")
    ),
    responses((status = 200, description = "the file: an image inline, anything else as a download", content_type = "application/octet-stream", body = String), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Read)?;
    let id = task_id(&state, &id).await?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "an artifact is named by its SHA-256: 64 hex characters",
        ));
    }
    let (record, bytes) = state
        .orchestrator
        .artifact(&id, &sha256)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} has no artifact {sha256}")))?;
    let path = record.path.as_str();
    let (content_type, inline) = content_type(path, Some(record.kind.as_str()));
    let name = download_name(path);
    let disposition = if inline {
        format!("inline; filename=\"{name}\"")
    } else {
        format!("attachment; filename=\"{name}\"")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
        ],
        bytes,
    ))
}

/// The type an artifact is sent as, and whether it is shown inline (only
/// raster images: an SVG can carry script).
fn content_type(path: &str, kind: Option<&str>) -> (&'static str, bool) {
    let extension = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match (kind, extension.as_str()) {
        (Some("image"), "png") => ("image/png", true),
        (Some("image"), "jpg" | "jpeg") => ("image/jpeg", true),
        (Some("image"), "gif") => ("image/gif", true),
        (Some("image"), "webp") => ("image/webp", true),
        _ => ("application/octet-stream", false),
    }
}

/// The file's own name with anything that could break the header
/// replaced.
fn download_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "artifact".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_inline_and_names_are_safe() {
        assert_eq!(
            content_type("shots/a.png", Some("image")),
            ("image/png", true)
        );
        assert_eq!(
            content_type("report/index.html", Some("html")),
            ("application/octet-stream", false)
        );
        assert_eq!(
            content_type("x.svg", Some("file")),
            ("application/octet-stream", false)
        );
        assert_eq!(download_name("a/b/re\"port\r\n.xml"), "re_port__.xml");
        assert_eq!(download_name("dir/"), "artifact");
    }
}
