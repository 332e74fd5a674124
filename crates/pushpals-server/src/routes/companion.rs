//! The companion: a web app embedded in the binary and served at `/`,
//! public like any static page (it holds no data; every API call it makes
//! needs a token). Strict security headers: no inline script or style, no
//! framing, no referrer.

use crate::assets::asset;
use crate::json::ApiPath as Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every companion response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

fn respond(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = asset(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let gzip = asset.gzip.as_ref().filter(|_| accepts_gzip(request));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match gzip {
            Some(bytes) => bytes.clone().into_response(),
            None => asset.body.clone().into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(header::ETAG, etag);
    }
    if gzip.is_some() && !unchanged {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
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
    // Kept, and asked again each time with the ETag: an unchanged file
    // costs a 304 and no body.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Whether the request's `Accept-Encoding` takes gzip (not with `q=0`).
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|value| {
            value.split(',').any(|part| {
                let mut pieces = part.split(';').map(str::trim);
                let coding = pieces.next().unwrap_or_default();
                let refused = pieces.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
            })
        })
}

/// `GET /`: the app's page.
pub async fn index(headers: HeaderMap) -> Response {
    respond("index.html", &headers)
}

/// `GET /{file}`: the app's other files.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(&path, &headers)
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
pub async fn view_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(&format!("views/{path}"), &headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::FILES;

    fn text(name: &str) -> String {
        String::from_utf8(asset(name).unwrap().body.clone()).unwrap()
    }

    #[test]
    fn every_file_the_shell_caches_is_served() {
        let worker = text("sw.js");
        for (name, _, _) in FILES
            .iter()
            .filter(|(n, _, _)| *n != "index.html" && *n != "sw.js")
        {
            assert!(
                worker.contains(&format!("\"/{name}\"")),
                "sw.js does not cache {name}"
            );
        }
        assert_eq!(
            respond("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
        // And every module the app imports is served.
        for (name, _, _) in FILES.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            for import in text(name)
                .lines()
                .filter_map(|l| l.split(" from \"").nth(1))
            {
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
                    asset(&resolved).is_some(),
                    "{name} imports {target}, which is not served"
                );
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = text("index.html");
        assert!(!page.contains("<script>") && !page.contains("style="));
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe"));
    }

    #[test]
    fn files_are_gzipped_when_asked_and_revalidated_by_their_hash() {
        let mut request = HeaderMap::new();
        request.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br;q=1.0, gzip;q=0.8"),
        );
        let response = respond("app.js", &request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let etag = response.headers()[header::ETAG].clone();
        // Without gzip in Accept-Encoding (or refused with q=0): plain.
        for refused in ["identity", "gzip;q=0", "deflate"] {
            request.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(refused));
            let plain = respond("app.js", &request);
            assert!(
                plain.headers().get(header::CONTENT_ENCODING).is_none(),
                "{refused}"
            );
        }
        // The same hash: 304, no body; another: the file.
        request.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            respond("app.js", &request).status(),
            StatusCode::NOT_MODIFIED
        );
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0\""));
        assert_eq!(respond("app.js", &request).status(), StatusCode::OK);
    }
}
