//! The companion's files, embedded in the binary and made ready once:
//! each with a validator from its content's hash, and a gzip copy when
//! that is smaller. The service worker's cache is named by the hash of
//! every file, so a new build replaces an installed app's shell.

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::OnceLock;

/// The embedded files: path, content type, content.
pub(crate) const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../companion/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../companion/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/dom.js"),
    ),
    (
        "repos.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/repos.js"),
    ),
    (
        "ansi.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/ansi.js"),
    ),
    (
        "views/pair.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/pair.js"),
    ),
    (
        "views/chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/chat.js"),
    ),
    (
        "views/board.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/board.js"),
    ),
    (
        "views/task.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/task.js"),
    ),
    (
        "views/newtask.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/newtask.js"),
    ),
    (
        "views/artifacts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/artifacts.js"),
    ),
    (
        "views/approvals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/approvals.js"),
    ),
    (
        "views/audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/audit.js"),
    ),
    (
        "views/suggestions.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/suggestions.js"),
    ),
    (
        "views/settings.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/views/settings.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/sw.js"),
    ),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_bytes!("../companion/manifest.webmanifest"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../companion/icon.svg"),
    ),
    (
        "diff.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../companion/diff.js"),
    ),
    (
        "apple-touch-icon.png",
        "image/png",
        include_bytes!("../companion/apple-touch-icon.png"),
    ),
    (
        "icon-192.png",
        "image/png",
        include_bytes!("../companion/icon-192.png"),
    ),
    (
        "icon-512.png",
        "image/png",
        include_bytes!("../companion/icon-512.png"),
    ),
];

/// The service worker's cache name as written in `sw.js`, replaced by one
/// made from the files' hash when served.
const SHELL_NAME: &str = "pushpals-shell-dev";

/// One file, ready to send.
pub(crate) struct Asset {
    /// Its path under `/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes as they are.
    pub body: Vec<u8>,
    /// Its bytes gzipped, when that is smaller.
    pub gzip: Option<Vec<u8>>,
    /// Its strong `ETag`, quoted: the first 16 bytes of its SHA-256.
    pub etag: String,
}

fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(body).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() + 64 < body.len()).then_some(compressed)
}

fn prepare() -> Vec<Asset> {
    let mut all = Sha256::new();
    for (name, _, body) in FILES {
        all.update(name.as_bytes());
        all.update(body);
    }
    let shell = format!("pushpals-shell-{}", hex::encode(&all.finalize()[..8]));
    FILES
        .iter()
        .map(|(name, content_type, body)| {
            let body = if *name == "sw.js" {
                String::from_utf8_lossy(body)
                    .replace(SHELL_NAME, &shell)
                    .into_bytes()
            } else {
                body.to_vec()
            };
            let compressible = !content_type.starts_with("image/png");
            Asset {
                name,
                content_type,
                gzip: if compressible { gzip(&body) } else { None },
                etag: etag(&body),
                body,
            }
        })
        .collect()
}

/// The file at `name`, if the companion has one.
pub(crate) fn asset(name: &str) -> Option<&'static Asset> {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(prepare).iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_worker_cache_is_named_by_the_content() {
        let worker = asset("sw.js").unwrap();
        let text = String::from_utf8(worker.body.clone()).unwrap();
        assert!(!text.contains(SHELL_NAME), "the placeholder was replaced");
        assert!(text.contains("pushpals-shell-"), "{text}");
        let raw = FILES.iter().find(|(n, _, _)| *n == "sw.js").unwrap().2;
        assert!(
            String::from_utf8_lossy(raw).contains(SHELL_NAME),
            "sw.js names its cache {SHELL_NAME}, which serving replaces"
        );
    }

    #[test]
    fn text_is_gzipped_and_images_are_not() {
        let app = asset("app.js").unwrap();
        let gz = app.gzip.as_ref().unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, app.body);
        assert!(asset("icon-512.png").unwrap().gzip.is_none());
        assert_ne!(app.etag, asset("api.js").unwrap().etag);
    }
}
