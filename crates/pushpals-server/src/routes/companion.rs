//! The companion: a web app embedded in the binary and served at `/`,
//! public like any static page (it holds no data; every API call it makes
//! needs a token). Strict security headers: no inline script or style, no
//! framing, no referrer.

use crate::json::ApiPath as Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every companion response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// The embedded files: path, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../companion/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../companion/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/dom.js"),
    ),
    (
        "ansi.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/ansi.js"),
    ),
    (
        "views/pair.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/pair.js"),
    ),
    (
        "views/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/chat.js"),
    ),
    (
        "views/board.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/board.js"),
    ),
    (
        "views/task.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/task.js"),
    ),
    (
        "views/newtask.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/newtask.js"),
    ),
    (
        "views/artifacts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/artifacts.js"),
    ),
    (
        "views/approvals.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/approvals.js"),
    ),
    (
        "views/audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/audit.js"),
    ),
    (
        "views/suggestions.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/suggestions.js"),
    ),
    (
        "views/settings.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/views/settings.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_str!("../../companion/sw.js"),
    ),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_str!("../../companion/manifest.webmanifest"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../companion/icon.svg"),
    ),
];

fn respond(path: &str) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(name, _, _)| *name == path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`: the app's page.
pub async fn index() -> Response {
    respond("index.html")
}

/// `GET /{file}`: the app's other files.
pub async fn file(Path(path): Path<String>) -> Response {
    respond(&path)
}

/// `GET /ca.pem`: the private CA's certificate, when the server uses one,
/// so a phone can install it (it is public by nature).
pub async fn ca_certificate(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
) -> Response {
    let Some(path) = state
        .orchestrator
        .settings()
        .tls
        .as_ref()
        .and_then(|tls| tls.ca.clone())
    else {
        return (StatusCode::NOT_FOUND, "this server uses no private CA").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-x509-ca-cert"),
            );
            response
        }
        Err(_) => (StatusCode::NOT_FOUND, "the CA certificate cannot be read").into_response(),
    }
}

/// `GET /views/{file}`: the app's screens.
pub async fn view_file(Path(path): Path<String>) -> Response {
    respond(&format!("views/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_shell_caches_is_served() {
        let worker = FILES.iter().find(|(n, _, _)| *n == "sw.js").unwrap().2;
        for (name, _, _) in FILES
            .iter()
            .filter(|(n, _, _)| *n != "index.html" && *n != "sw.js")
        {
            assert!(
                worker.contains(&format!("\"/{name}\"")),
                "sw.js does not cache {name}"
            );
        }
        assert_eq!(respond("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        // And every module the app imports is served.
        for (name, _, body) in FILES.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            for import in body.lines().filter_map(|l| l.split(" from \"").nth(1)) {
                let target = import.trim_end_matches("\";");
                let resolved = if let Some(rest) = target.strip_prefix("../") {
                    rest.to_owned()
                } else if let Some(rest) = target.strip_prefix("./") {
                    match name.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{rest}"),
                        None => rest.to_owned(),
                    }
                } else {
                    continue;
                };
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == resolved),
                    "{name} imports {target}, which is not served"
                );
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = FILES[0].2;
        assert!(!page.contains("<script>") && !page.contains("style="));
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe"));
    }
}
