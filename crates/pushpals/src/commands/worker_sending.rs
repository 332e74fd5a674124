//! How a worker host talks to the server about a run: each send tried
//! again while the server cannot be reached (numbered, so nothing arrives
//! twice), output chunks, and the relay of a command's network connections
//! to the server's proxy over upgraded requests.

use crate::client::Client;
use anyhow::{Result, bail};
use pushpals_sandbox::OutputStream;
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// The longest wait between tries while the server cannot be reached.
pub(super) const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// How a send ended.
pub(super) enum Sent {
    /// The server took it.
    Taken(reqwest::Response),
    /// The run is no longer this worker's (409, 404): drop it.
    Gone(String),
}

/// Relays each connection the command opens on `listener` to the server's
/// proxy for it: a request upgraded to a byte stream.
pub(super) fn relay_network(
    client: Arc<Client>,
    listener: tokio::net::UnixListener,
    task: &str,
    lease: u64,
    seq: u64,
) -> tokio::task::JoinHandle<()> {
    let path = format!("/workers/tasks/{task}/network?lease={lease}&seq={seq}");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (client, path) = (Arc::clone(&client), path.clone());
            tokio::spawn(async move {
                let response = client
                    .request(Method::GET, &path)
                    .header(reqwest::header::CONNECTION, "upgrade")
                    .header(reqwest::header::UPGRADE, "pushpals-tunnel")
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                    return;
                }
                let Ok(mut upgraded) = response.upgrade().await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upgraded).await;
            });
        }
    })
}

/// Sends one output chunk; `Some(why)` when the run is gone.
pub(super) async fn send_chunk(
    client: &Client,
    task: &str,
    lease: u64,
    seq: u64,
    chunk: &mut u64,
    stream: OutputStream,
    bytes: Vec<u8>,
) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let path = format!(
        "/workers/tasks/{task}/output?lease={lease}&seq={seq}&chunk={chunk}&stream={}",
        stream.as_str()
    );
    *chunk += 1;
    match send_until_taken(client, Method::POST, &path, bytes).await {
        Ok(Sent::Taken(_)) => None,
        Ok(Sent::Gone(why)) => Some(why),
        Err(error) => Some(format!("{error:#}")),
    }
}

/// Sends until the server answers: tried again while it cannot be reached
/// or answers 5xx; `Gone` on 404/409; an error on 401 or another refusal.
pub(super) async fn send_until_taken(
    client: &Client,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<Sent> {
    let mut wait = Duration::from_millis(200);
    loop {
        let mut request = client
            .request(method.clone(), path)
            .timeout(Duration::from_secs(60));
        if method != Method::GET {
            let json = ["/result", "/diff-failed", "/warm"];
            let content = if json.iter().any(|end| path.ends_with(end)) {
                "application/json"
            } else {
                "application/octet-stream"
            };
            request = request
                .header(reqwest::header::CONTENT_TYPE, content)
                .body(body.clone());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(Sent::Taken(response)),
            Ok(response)
                if matches!(
                    response.status(),
                    StatusCode::CONFLICT | StatusCode::NOT_FOUND
                ) =>
            {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                return Ok(Sent::Gone(
                    body["message"]
                        .as_str()
                        .unwrap_or("the run is gone")
                        .to_owned(),
                ));
            }
            Ok(response) if response.status().is_server_error() => {}
            Ok(response) => {
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                bail!(
                    "the server refused {path}: {} (HTTP {})",
                    body["message"].as_str().unwrap_or("no details"),
                    status.as_u16()
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MOST_BACKOFF);
    }
}
