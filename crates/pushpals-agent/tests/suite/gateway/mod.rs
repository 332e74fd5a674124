//! The model gateway against the scripted model server: an agent's call
//! carries only its task token; the gateway puts the real key and model in,
//! streams the answer back, counts it, and refuses what it must.

mod judges;
mod passthrough;
mod refusals;
mod translation;

use pushpals_agent::budget::Budget;
use pushpals_agent::{
    Gateway, GatewayCall, GatewayToken, Issue, ModelClient, ModelConfig, Protocol,
};
use pushpals_core::{TaskId, Usage};
use std::sync::Arc;
use tokio::sync::mpsc;

pub(super) fn model(protocol: Protocol, base_url: String) -> Arc<ModelClient> {
    let config = ModelConfig {
        protocol,
        base_url,
        model: "real-model-7".into(),
        // A variable every test process has, standing in for the real key.
        api_key_env: Some("PATH".into()),
        context_tokens: 100_000,
        max_output_tokens: 1000,
        input_price_per_mtok: 1.0,
        output_price_per_mtok: 1.0,
        stream: true,
        timeout_secs: 10,
        max_retries: 0,
    };
    Arc::new(ModelClient::new("worker", config).unwrap())
}

/// The gateway on a Unix socket, reached the way a sandbox reaches it: a
/// loopback port relayed to the socket.
pub(super) struct Served {
    pub(super) _dir: tempfile::TempDir,
    pub(super) _server: pushpals_agent::GatewayServer,
    pub(super) url: String,
}

pub(super) async fn serve(gateway: &Arc<Gateway>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gateway.sock");
    let server = gateway.serve(&socket).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    Served {
        _dir: dir,
        _server: server,
        url,
    }
}

pub(super) fn budget(max_tokens: u64) -> Budget {
    Budget {
        max_tokens,
        ..Budget::default()
    }
}

/// A token for a new task calling `model` within `budget`.
pub(super) fn grant(
    gateway: &Gateway,
    model: Arc<ModelClient>,
    budget: Budget,
    judge: Option<Arc<dyn pushpals_agent::Judge>>,
) -> GatewayToken {
    gateway
        .issue(Issue {
            task: TaskId::from_random(rand_id()),
            model,
            budget,
            used: Usage::default(),
            judge,
        })
        .unwrap()
}

pub(super) async fn next_call(calls: &mut mpsc::UnboundedReceiver<GatewayCall>) -> GatewayCall {
    tokio::time::timeout(std::time::Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap()
}

pub(super) fn rand_id() -> [u8; 8] {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}
