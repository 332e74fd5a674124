//! The network proxy: the only way out of a sandbox granted network. It
//! listens on a Unix socket (bind-mounted into the sandbox, reached through
//! the relay), takes HTTP `CONNECT host:port` and plain `http://` requests,
//! lets through only hosts on the allowlist, refuses the rest with 403, and
//! reports every decision.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Largest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

/// What the proxy did with one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkEvent {
    /// Let through to this host and port.
    Allowed {
        /// The host asked for.
        host: String,
        /// The port.
        port: u16,
    },
    /// Refused: not on the allowlist, or not a request the proxy takes.
    Refused {
        /// The host asked for (empty when the request did not parse).
        host: String,
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
}

/// Hosts a sandbox may reach, as glob patterns (`*.example.com`).
#[derive(Debug, Clone)]
pub struct Allowlist {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Allowlist {
    /// Compiles host patterns; matching ignores case.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("host pattern {pattern:?}: {e}"))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// Whether `host` may be reached.
    pub fn allows(&self, host: &str) -> bool {
        self.set.is_match(host)
    }

    /// The patterns.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// A running proxy; stops and removes its socket when dropped.
#[derive(Debug)]
pub struct Proxy {
    socket_path: PathBuf,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a new Unix socket at `socket_path`; reports each
    /// connection's outcome to `events`.
    pub fn start(
        socket_path: &Path,
        allowlist: Allowlist,
        events: mpsc::UnboundedSender<NetworkEvent>,
    ) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(socket_path);
        let listener = UnixListener::bind(socket_path)?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let allowlist = allowlist.clone();
                let events = events.clone();
                tokio::spawn(async move {
                    let event = serve(client, &allowlist).await;
                    let _ = events.send(event);
                });
            }
        });
        Ok(Self {
            socket_path: socket_path.to_path_buf(),
            task,
        })
    }

    /// The socket the relay connects to.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

/// Handles one connection; returns what it did.
async fn serve(mut client: UnixStream, allowlist: &Allowlist) -> NetworkEvent {
    let mut buffer = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_HEAD {
            return refuse(&mut client, "", 0, "the request head is too large").await;
        }
        let mut chunk = [0u8; 2048];
        match tokio::time::timeout(Duration::from_secs(30), client.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                return NetworkEvent::Refused {
                    host: String::new(),
                    port: 0,
                    reason: "the client sent no complete request".into(),
                };
            }
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let first_line = head.lines().next().unwrap_or_default();
    let mut parts = first_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return refuse(&mut client, "", 0, "not an HTTP request").await;
    };
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let Some((host, port)) = target_host(target, connect) else {
        return refuse(
            &mut client,
            "",
            0,
            "the proxy takes CONNECT and http:// requests only",
        )
        .await;
    };
    if !allowlist.allows(&host) {
        return refuse(
            &mut client,
            &host,
            port,
            "the host is not on the network allowlist",
        )
        .await;
    }
    let upstream = match tokio::time::timeout(
        Duration::from_secs(20),
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(upstream)) => upstream,
        _ => {
            let _ = client
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return NetworkEvent::Refused {
                host,
                port,
                reason: "the host could not be reached".into(),
            };
        }
    };
    let mut upstream = upstream;
    // Pass small writes on at once, as the client side does.
    let _ = upstream.set_nodelay(true);
    if connect {
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return NetworkEvent::Allowed { host, port };
        }
        if head_end < buffer.len() {
            let _ = upstream.write_all(&buffer[head_end..]).await;
        }
    } else if upstream.write_all(&buffer).await.is_err() {
        return NetworkEvent::Allowed { host, port };
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    NetworkEvent::Allowed { host, port }
}

async fn refuse(client: &mut UnixStream, host: &str, port: u16, reason: &str) -> NetworkEvent {
    let body = format!("Push Pals refused this connection: {reason}.\n");
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    NetworkEvent::Refused {
        host: host.to_owned(),
        port,
        reason: reason.to_owned(),
    }
}

/// The host and port of a request target: `host:port` for CONNECT, an
/// absolute `http://host[:port]/...` URL otherwise.
fn target_host(target: &str, connect: bool) -> Option<(String, u16)> {
    let (authority, default_port) = if connect {
        (target, None)
    } else {
        let rest = target.strip_prefix("http://")?;
        (rest.split(['/', '?', '#']).next()?, Some(80))
    };
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, rest) = inner.split_once(']')?;
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port?,
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets() {
        assert_eq!(
            target_host("example.com:443", true),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            target_host("http://Example.com/x?y", false),
            Some(("example.com".into(), 80))
        );
        assert_eq!(
            target_host("http://u:p@h:8080/", false),
            Some(("h".into(), 8080))
        );
        assert_eq!(target_host("[::1]:22", true), Some(("::1".into(), 22)));
        assert_eq!(target_host("https://x/", false), None);
        assert_eq!(target_host("example.com", true), None);
    }

    #[test]
    fn allowlist_globs_ignore_case_and_do_not_cross_dots_loosely() {
        let list = Allowlist::new(&["*.example.com".into(), "localhost".into()]).unwrap();
        assert!(list.allows("pkg.Example.com"));
        assert!(list.allows("localhost"));
        assert!(!list.allows("example.com.evil.net"));
        assert!(!list.allows("evil.net"));
    }
}
