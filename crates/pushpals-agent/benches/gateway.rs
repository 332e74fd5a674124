//! Gateway overhead per streamed model call: time to the first byte and to
//! the whole answer, through the gateway (a loopback port relayed to its
//! Unix socket, as inside a sandbox) beside the floor: the same call made
//! straight to the scripted model server, in the same run.
//!
//! Run: `cargo bench -p pushpals-agent --bench gateway`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use pushpals_agent::budget::Budget;
use pushpals_agent::{Gateway, Issue, ModelClient, ModelConfig, Protocol};
use pushpals_core::{TaskId, Usage};
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: usize = 300;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// One streamed Messages call: (first byte, whole answer).
async fn call(client: &reqwest::Client, url: &str, key: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let response = client
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "m",
            "max_tokens": 100,
            "stream": true,
            "messages": [{ "role": "user", "content": "write a line of code" }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut first = None;
    while let Some(chunk) = body.next().await {
        chunk.unwrap();
        first.get_or_insert_with(|| started.elapsed());
    }
    (first.unwrap(), started.elapsed())
}

async fn run() {
    let script: Vec<Reply> = (0..CALLS * 2 + 20)
        .map(|i| Reply::text(&format!("line {i}: let answer = {i};")))
        .collect();
    let provider = ScriptedModel::start(script).await;
    let (gateway, mut calls) = Gateway::new();
    tokio::spawn(async move { while calls.recv().await.is_some() {} });
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gateway.sock");
    let _server = gateway.serve(&socket).unwrap();
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relayed = format!("http://{}", relay.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = relay.accept().await {
            // As the sandbox helper's relay does.
            client.set_nodelay(true).unwrap();
            let socket = socket.clone();
            tokio::spawn(async move {
                let mut upstream = tokio::net::UnixStream::connect(&socket).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    let model = ModelClient::new(
        "bench",
        ModelConfig {
            protocol: Protocol::Anthropic,
            base_url: provider.anthropic_base(),
            model: "m".into(),
            api_key_env: Some("PATH".into()),
            context_tokens: 100_000,
            max_output_tokens: 1000,
            input_price_per_mtok: 1.0,
            output_price_per_mtok: 1.0,
            stream: true,
            timeout_secs: 30,
            max_retries: 0,
        },
    )
    .unwrap();
    let token = gateway
        .issue(Issue {
            task: TaskId::from_random([7; 8]),
            model: Arc::new(model),
            budget: Budget {
                max_steps: 0,
                max_tokens: 0,
                max_cost_usd: 0.0,
                max_minutes: 60.0,
            },
            used: Usage::default(),
            judge: None,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let direct_url = provider.anthropic_base();
    // Warm both paths (connections, the first routes).
    for _ in 0..10 {
        call(&client, &direct_url, "k").await;
        call(&client, &relayed, token.secret()).await;
    }
    let (mut direct_first, mut direct_total, mut gateway_first, mut gateway_total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let (first, total) = call(&client, &direct_url, "k").await;
        direct_first.push(first);
        direct_total.push(total);
        let (first, total) = call(&client, &relayed, token.secret()).await;
        gateway_first.push(first);
        gateway_total.push(total);
    }
    println!("gateway overhead per streamed Messages call ({CALLS} calls each, interleaved)");
    for (name, ours, floor) in [
        ("first byte", &mut gateway_first, &mut direct_first),
        ("whole answer", &mut gateway_total, &mut direct_total),
    ] {
        for p in [0.5, 0.95] {
            let (o, f) = (percentile(ours, p), percentile(floor, p));
            println!(
                "  {name:<12} p{:<2}: through the gateway {:>7.3} ms, straight to the model {:>7.3} ms, ratio {:.2}x, overhead {:.3} ms",
                (p * 100.0) as u32,
                o.as_secs_f64() * 1000.0,
                f.as_secs_f64() * 1000.0,
                o.as_secs_f64() / f.as_secs_f64(),
                (o.as_secs_f64() - f.as_secs_f64()) * 1000.0,
            );
        }
    }
}
