//! Load and soak: the real server with 16 tasks at once, each streaming
//! about 1,000 lines a second, while a client polls the API and another
//! follows the event stream. Prints, each beside its floor measured in the
//! same run: API latency (floor: `/healthz` under the same load),
//! command-output-to-SSE latency (floor: the same command's lines read
//! straight from a pipe), the store's writer time for the round's events
//! (floor: raw SQLite inserting as many rows of the same size); and the
//! events/s stored, the server's CPU and RSS. Two more rounds show whether
//! memory grows with the number of stored events.
//!
//! `cargo bench -p pushpals --bench load`
//!
//! Over 400 lines: a bench binary is one file; the server, the load it
//! makes, and the three floors it is measured against belong together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_test_support::TempRepo;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_pushpals");
const TASKS: usize = 16;
/// Seconds each task streams per round (its output stays under the
/// 256 KiB kept inline in events).
const STREAM_SECS: u32 = 8;
const ROUNDS: usize = 8;

struct Server {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(repo: &std::path::Path, data: &std::path::Path) -> Server {
    let config = data.join("config-home/pushpals");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("config.toml"),
        format!("max_parallel = {TASKS}\n[limits]\ncommand_timeout_secs = 600\n"),
    )
    .expect("config");
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(repo)
        .env("PUSHPALS_DATA_DIR", data)
        .env("XDG_CONFIG_HOME", data.join("config-home"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("an API line").expect("text");
        if let Some(rest) = line.trim().strip_prefix("API:") {
            let address = rest.split_whitespace().next().expect("an address");
            break address.trim_end_matches("/api/v1/").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let token = std::fs::read_to_string(data.join("admin.token"))
        .expect("admin token")
        .trim()
        .to_owned();
    Server { child, url, token }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// CPU seconds (user + system) and RSS of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss_kib * 1024)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Follows the event stream, timing each streamed line from its `T=`
/// stamp to its arrival.
async fn follow(
    client: reqwest::Client,
    server_url: String,
    token: String,
    lags: Arc<Mutex<Vec<f64>>>,
    sizes: Arc<Mutex<Vec<usize>>>,
) {
    let Ok(mut response) = client
        .get(format!("{server_url}/api/v1/events"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return;
    };
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let arrived = now_secs();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            if event["kind"] != "output" {
                continue;
            }
            if let Ok(mut sizes) = sizes.lock() {
                sizes.push(data.len());
            }
            let text = event["payload"]["text"].as_str().unwrap_or_default();
            let mut lags = lags
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for stamp in text.split("T=").skip(1) {
                if let Some(sent) = stamp
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
                {
                    lags.push(arrived - sent);
                }
            }
        }
    }
}

/// Times GETs of `path` every 20 ms until `until`.
async fn poll(client: reqwest::Client, url: String, token: String, until: Instant) -> Vec<f64> {
    let mut times = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        if let Ok(response) = client.get(&url).bearer_auth(&token).send().await {
            let _ = response.bytes().await;
            times.push(started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times
}

async fn last_event_id(client: &reqwest::Client, server: &Server) -> i64 {
    let verify: Value = client
        .get(format!("{}/api/v1/audit/verify", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("json");
    verify["head_id"].as_i64().unwrap_or(0)
}

struct Round {
    ended: String,
    events: i64,
    output_events: usize,
    event_bytes: usize,
    commit_seconds: f64,
    seconds: f64,
    api: Vec<f64>,
    healthz: Vec<f64>,
    lags: Vec<f64>,
    cpu: f64,
    rss_peak: u64,
    rss_after: u64,
}

async fn round(client: &reqwest::Client, server: &Server) -> Round {
    let pid = server.child.id();
    let first = last_event_id(client, server).await;
    let committed_before = commit_seconds(client, server).await;
    let lags = Arc::new(Mutex::new(Vec::new()));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let follower = tokio::spawn(follow(
        client.clone(),
        server.url.clone(),
        server.token.clone(),
        lags.clone(),
        sizes.clone(),
    ));
    let command = stream_command(STREAM_SECS);
    let (cpu_before, _) = usage(pid);
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..TASKS {
        let task: Value = client
            .post(format!("{}/api/v1/tasks", server.url))
            .bearer_auth(&server.token)
            .json(&json!({ "title": format!("stream {n}"), "command": command, "approve_command": true }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("task");
        ids.push(task["id"].as_str().expect("an id").to_owned());
    }
    let until = started + Duration::from_secs(u64::from(STREAM_SECS));
    let api = tokio::spawn(poll(
        client.clone(),
        format!("{}/api/v1/tasks", server.url),
        server.token.clone(),
        until,
    ));
    let healthz = tokio::spawn(poll(
        client.clone(),
        format!("{}/healthz", server.url),
        server.token.clone(),
        until,
    ));
    let mut rss_peak = 0;
    let ended = loop {
        rss_peak = rss_peak.max(usage(pid).1);
        let tasks: Value = client
            .get(format!("{}/api/v1/tasks", server.url))
            .bearer_auth(&server.token)
            .send()
            .await
            .expect("tasks")
            .json()
            .await
            .expect("json");
        let running = tasks["tasks"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|t| ids.iter().any(|id| t["id"] == id.as_str()))
                    .filter(|t| {
                        !["no_changes", "failed", "awaiting_approval", "committed"]
                            .contains(&t["state"].as_str().unwrap_or(""))
                    })
                    .count()
            })
            .unwrap_or(0);
        if running == 0 || started.elapsed() > Duration::from_secs(300) {
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for task in tasks["tasks"].as_array().into_iter().flatten() {
                if ids.iter().any(|id| task["id"] == id.as_str()) {
                    let state = task["state"].as_str().unwrap_or("?");
                    *counts.entry(state.to_owned()).or_default() += 1;
                    if state != "no_changes" {
                        println!("  task {} ended {state}: {}", task["id"], task["reason"]);
                    }
                }
            }
            break format!("{counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let (cpu_after, rss_after) = usage(pid);
    follower.abort();
    let events = last_event_id(client, server).await - first;
    let commit_seconds = commit_seconds(client, server).await - committed_before;
    let lags = lags.lock().map(|l| l.clone()).unwrap_or_default();
    let sizes = sizes.lock().map(|s| s.clone()).unwrap_or_default();
    Round {
        ended,
        events,
        output_events: sizes.len(),
        event_bytes: sizes.iter().sum::<usize>() / sizes.len().max(1),
        commit_seconds,
        seconds,
        api: api.await.unwrap_or_default(),
        healthz: healthz.await.unwrap_or_default(),
        lags,
        cpu: cpu_after - cpu_before,
        rss_peak,
        rss_after,
    }
}

/// The command each task runs: about 1,000 stamped lines a second.
fn stream_command(secs: u32) -> String {
    format!(
        "bash -c 'for s in $(seq 1 {}); do for i in $(seq 1 100); do echo \"T=$EPOCHREALTIME $i\"; done; sleep 0.1; done'",
        secs * 10
    )
}

/// The writer's time so far, from the server's own metrics.
async fn commit_seconds(client: &reqwest::Client, server: &Server) -> f64 {
    let text = client
        .get(format!("{}/api/v1/metrics", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("pushpals_event_commit_seconds_sum "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Raw SQLite: `rows` rows of `bytes` each, one transaction a row, in WAL
/// mode; the seconds it took.
fn sqlite_floor(dir: &std::path::Path, rows: usize, bytes: usize) -> f64 {
    let path = dir.join("floor.db");
    let _ = std::fs::remove_file(&path);
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE e (id INTEGER PRIMARY KEY, task TEXT, kind TEXT, payload TEXT, hash TEXT);",
    )
    .expect("schema");
    let payload = "x".repeat(bytes);
    let started = Instant::now();
    for _ in 0..rows {
        conn.execute(
            "INSERT INTO e (task, kind, payload, hash) VALUES ('t', 'output', ?1, ?2)",
            rusqlite::params![payload, "0".repeat(64)],
        )
        .expect("insert");
    }
    started.elapsed().as_secs_f64()
}

/// The stamped lines read straight from the command's pipe: the floor of
/// output-to-reader latency.
fn pipe_floor(secs: u32) -> Vec<f64> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(stream_command(secs))
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut lags = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
    {
        let arrived = now_secs();
        if let Some(sent) = line
            .strip_prefix("T=")
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        {
            lags.push(arrived - sent);
        }
    }
    let _ = child.wait();
    lags
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let repo = TempRepo::new();
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(&repo.path, data.path());
    let client = reqwest::Client::new();
    let mut pipe = pipe_floor(2);
    let pipe_p99 = percentile(&mut pipe, 0.99) * 1e3;
    println!(
        "load: {TASKS} tasks streaming ~1,000 lines/s each for {STREAM_SECS} s, {ROUNDS} rounds, 2 cores"
    );
    let mut rounds = Vec::new();
    for n in 1..=ROUNDS {
        let mut r = runtime.block_on(round(&client, &server));
        println!(
            "round {n}: tasks ended {}; {} events in {:.1} s = {:.0} events/s stored ({} output events of ~{} bytes)",
            r.ended,
            r.events,
            r.seconds,
            r.events as f64 / r.seconds,
            r.output_events,
            r.event_bytes
        );
        let rows = usize::try_from(r.events).unwrap_or(0);
        let raw = sqlite_floor(data.path(), rows, r.event_bytes);
        println!(
            "  store writer busy {:.0} ms for them; raw SQLite (floor) {:.0} ms for as many rows; {:.1}x",
            r.commit_seconds * 1e3,
            raw * 1e3,
            r.commit_seconds / raw
        );
        let api_p99 = percentile(&mut r.api, 0.99) * 1e3;
        let floor_p99 = percentile(&mut r.healthz, 0.99) * 1e3;
        println!(
            "  API GET /api/v1/tasks: p50 {:.1} ms, p99 {api_p99:.1} ms; GET /healthz (floor) p99 {floor_p99:.1} ms; {:.1}x",
            percentile(&mut r.api, 0.5) * 1e3,
            api_p99 / floor_p99
        );
        let sse_p99 = percentile(&mut r.lags, 0.99) * 1e3;
        println!(
            "  command output to SSE client: {} lines, p50 {:.0} ms, p99 {sse_p99:.0} ms; \
             straight from a pipe (floor) p99 {pipe_p99:.1} ms; {:.0}x (output is coalesced \
             for up to 50 ms by design)",
            r.lags.len(),
            percentile(&mut r.lags, 0.5) * 1e3,
            sse_p99 / pipe_p99
        );
        println!(
            "  server CPU {:.0}% of one core; RSS peak {:.1} MiB, after {:.1} MiB",
            r.cpu / r.seconds * 100.0,
            r.rss_peak as f64 / 1048576.0,
            r.rss_after as f64 / 1048576.0
        );
        rounds.push(r);
    }
    // The first rounds fill what is bounded by design (the live
    // broadcast's ring of recent events, SQLite's page caches, the
    // allocator's arenas); from then on memory must stay where it is
    // however many events are stored.
    let stored: i64 = rounds.iter().map(|r| r.events).sum();
    let settled = rounds.get(3).map_or(0, |r| r.rss_after) as f64 / 1048576.0;
    let last = rounds.last().map_or(0, |r| r.rss_after) as f64 / 1048576.0;
    let later_events: i64 = rounds.iter().skip(4).map(|r| r.events).sum();
    let growth = last - settled;
    let verdict = if growth < 4.0 { "flat" } else { "GROWS" };
    println!(
        "soak: {stored} events stored; RSS after round 4 {settled:.1} MiB, after round {ROUNDS} {last:.1} MiB ({growth:+.1} MiB over {later_events} more events): {verdict}"
    );
    if verdict != "flat" {
        std::process::exit(1);
    }
}
