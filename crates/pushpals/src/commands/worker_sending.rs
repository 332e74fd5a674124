//! How a worker host talks to the server about a run: each send tried
//! again while the server cannot be reached (numbered, so nothing arrives
//! twice), output chunks, a run's artifacts, and the relay of a command's
//! network connections to the server's proxy over upgraded requests.

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

/// Relays each connection the command opens on `listener` to what the
/// server's `path` reaches for it (its network proxy, the model gateway):
/// a request upgraded to a byte stream.
pub(super) fn relay_connections(
    client: Arc<Client>,
    listener: tokio::net::UnixListener,
    path: String,
) -> tokio::task::JoinHandle<()> {
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
            let json = ["/result", "/diff-failed", "/warm", "/artifacts"];
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

/// Takes the files `patterns` name from the run's clone `dir` (into
/// `store`), sends each, then says which it took and which it refused.
pub(super) async fn send_artifacts(
    client: &Client,
    task: &str,
    lease: u64,
    dir: &std::path::Path,
    store: std::path::PathBuf,
    patterns: Vec<String>,
) {
    let clone = dir.to_path_buf();
    let kept = store.clone();
    let taken = tokio::task::spawn_blocking(move || {
        pushpals_orchestrator::worker_host::take_artifacts(&clone, &patterns, &kept)
    })
    .await;
    let mut report = pushpals_core::worker_wire::ArtifactsReport {
        lease,
        ..Default::default()
    };
    match taken {
        Ok(Ok((taken, refused))) => {
            report.refused = refused;
            for (path, sha256) in taken {
                let bytes = match std::fs::read(store.join(&sha256)) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        report
                            .refused
                            .push((path, format!("cannot read it: {error}")));
                        continue;
                    }
                };
                let url = format!("/workers/tasks/{task}/artifacts/{sha256}?lease={lease}");
                match send_until_taken(client, Method::PUT, &url, bytes).await {
                    Ok(Sent::Taken(_)) => report
                        .taken
                        .push(pushpals_core::worker_wire::TakenArtifact { path, sha256 }),
                    Ok(Sent::Gone(why)) => {
                        say!("Task {task}: {why}");
                        let _ = std::fs::remove_dir_all(&store);
                        return;
                    }
                    Err(error) => report.refused.push((path, format!("{error:#}"))),
                }
            }
        }
        Ok(Err(why)) => report.error = Some(why),
        Err(error) => report.error = Some(format!("taking the artifacts stopped: {error}")),
    }
    let _ = std::fs::remove_dir_all(&store);
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let path = format!("/workers/tasks/{task}/artifacts");
    match send_until_taken(client, Method::POST, &path, body).await {
        Ok(Sent::Taken(_)) => say!("Task {task}: sent {} artifacts.", report.taken.len()),
        Ok(Sent::Gone(why)) => say!("Task {task}: {why}"),
        Err(error) => say!("Task {task}: {error:#}"),
    }
}
