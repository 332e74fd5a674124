//! Real git servers on loopback for clone and fetch tests: git's smart
//! HTTP (`git http-backend` behind a small HTTP/1.1 front that asks for
//! Basic credentials) and `git daemon`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// `git http-backend` serving the bare repositories under a directory.
pub(crate) struct SmartHttp {
    pub(crate) base: String,
    /// Requests refused for missing or wrong credentials.
    pub(crate) refused: Arc<AtomicUsize>,
    /// Requests of any kind.
    pub(crate) requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmartHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmartHttp {
    /// Serves `root`; every request needs `Authorization: Basic` of
    /// `user:password`.
    pub(crate) async fn start(root: &Path, user: &str, password: &str) -> Self {
        use base64::Engine;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let refused = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (root, counter, seen) = (
            root.to_path_buf(),
            Arc::clone(&refused),
            Arc::clone(&requests),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                seen.fetch_add(1, Ordering::SeqCst);
                let (root, expected, counter) =
                    (root.clone(), expected.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let _ = serve_one(stream, &root, &expected, &counter).await;
                });
            }
        });
        Self {
            base,
            refused,
            requests,
            task,
        }
    }
}

/// A server that answers every request with a redirect to `target` (the
/// same path there).
pub(crate) async fn redirector(target: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let target = target.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut line = String::new();
                let _ = reader.read_line(&mut line).await;
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let _ = write
                    .write_all(
                        format!(
                            "HTTP/1.1 302 Found\r\nLocation: {target}{path}\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (base, task)
}

async fn serve_one(
    stream: tokio::net::TcpStream,
    root: &Path,
    expected: &str,
    refused: &AtomicUsize,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("GET").to_owned(),
        parts.next().unwrap_or("/").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await?;
        let header = header.trim_end().to_owned();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        body
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        body
    };
    if header("authorization").as_deref() != Some(expected) {
        refused.fetch_add(1, Ordering::SeqCst);
        write
            .write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", "tester")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(protocol) = header("git-protocol") {
        cgi.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await?;
    let _ = feed.await;
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .unwrap_or((out.len(), 0));
    let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
    let content = &out[(split.0 + split.1).min(out.len())..];
    let mut status = "200 OK".to_owned();
    let mut response = String::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value.trim().to_owned()
            }
            Some(_) => response.push_str(&format!("{}\r\n", line.trim_end())),
            None => {}
        }
    }
    write
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
                content.len()
            )
            .as_bytes(),
        )
        .await?;
    write.write_all(content).await?;
    write.flush().await
}

/// `git daemon` serving the bare repositories under a directory.
pub(crate) struct Daemon {
    pub(crate) base: String,
    child: std::process::Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub(crate) async fn start(root: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.display()))
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self {
            base: format!("git://127.0.0.1:{port}"),
            child,
        }
    }
}

/// A bare copy of `source` at `root/name.git`.
pub(crate) fn bare_copy(source: &Path, root: &Path, name: &str) -> PathBuf {
    let bare = root.join(format!("{name}.git"));
    pushpals_test_support::git_in(
        root,
        &[
            "clone",
            "--quiet",
            "--bare",
            source.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    bare
}
