//! Load and soak: the real server with 16 tasks at once, each streaming
//! about 1,000 lines a second, while a client polls the API and another
//! follows the event stream. Prints API latency (against `/healthz` under
//! the same load: the HTTP stack's floor), command-output-to-SSE latency,
//! events stored per second (against raw SQLite inserts: the store's
//! floor), the server's CPU and RSS; then two more rounds, to show that
//! memory does not grow with the number of stored events.
//!
//! `cargo bench -p pushpals --bench load`

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
const ROUNDS: usize = 3;

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
    events: i64,
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
    let lags = Arc::new(Mutex::new(Vec::new()));
    let follower = tokio::spawn(follow(
        client.clone(),
        server.url.clone(),
        server.token.clone(),
        lags.clone(),
    ));
    let command = format!(
        "bash -c 'for s in $(seq 1 {}); do for i in $(seq 1 100); do echo \"T=$EPOCHREALTIME $i\"; done; sleep 0.1; done'",
        STREAM_SECS * 10
    );
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
    loop {
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
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cpu_after, rss_after) = usage(pid);
    follower.abort();
    let events = last_event_id(client, server).await - first;
    let lags = lags.lock().map(|l| l.clone()).unwrap_or_default();
    Round {
        events,
        seconds,
        api: api.await.unwrap_or_default(),
        healthz: healthz.await.unwrap_or_default(),
        lags,
        cpu: cpu_after - cpu_before,
        rss_peak,
        rss_after,
    }
}

/// Raw SQLite: one event-sized row per transaction in WAL mode, as fast as
/// it goes for `secs`.
fn sqlite_floor(dir: &std::path::Path, secs: f64) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("floor.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE e (id INTEGER PRIMARY KEY, task TEXT, kind TEXT, payload TEXT, hash TEXT);",
    )
    .expect("schema");
    let payload = format!(
        "{{\"text\":\"{}\"}}",
        "T=1764115200.123456 42\\n".repeat(40)
    );
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed().as_secs_f64() < secs {
        conn.execute(
            "INSERT INTO e (task, kind, payload, hash) VALUES ('t', 'output', ?1, ?2)",
            rusqlite::params![payload, "0".repeat(64)],
        )
        .expect("insert");
        rows += 1;
    }
    rows as f64 / started.elapsed().as_secs_f64()
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
    let floor = sqlite_floor(data.path(), 2.0);
    println!(
        "load: {TASKS} tasks streaming ~1,000 lines/s each for {STREAM_SECS} s, {ROUNDS} rounds, 2 cores"
    );
    let mut rounds = Vec::new();
    for n in 1..=ROUNDS {
        let mut r = runtime.block_on(round(&client, &server));
        let ours = r.events as f64 / r.seconds;
        println!(
            "round {n}: {} events in {:.1} s = {:.0} events/s stored (raw SQLite floor {:.0}/s, {:.2}x of it)",
            r.events,
            r.seconds,
            ours,
            floor,
            ours / floor
        );
        let api_p99 = percentile(&mut r.api, 0.99) * 1e3;
        let floor_p99 = percentile(&mut r.healthz, 0.99) * 1e3;
        println!(
            "  API GET /api/v1/tasks: p50 {:.1} ms, p99 {api_p99:.1} ms; GET /healthz (floor) p99 {floor_p99:.1} ms; {:.1}x",
            percentile(&mut r.api, 0.5) * 1e3,
            api_p99 / floor_p99
        );
        println!(
            "  command output to SSE client: {} lines, p50 {:.0} ms, p99 {:.0} ms (output is coalesced up to 50 ms by design)",
            r.lags.len(),
            percentile(&mut r.lags, 0.5) * 1e3,
            percentile(&mut r.lags, 0.99) * 1e3
        );
        println!(
            "  server CPU {:.0}% of one core; RSS peak {:.1} MiB, after {:.1} MiB",
            r.cpu / r.seconds * 100.0,
            r.rss_peak as f64 / 1048576.0,
            r.rss_after as f64 / 1048576.0
        );
        rounds.push(r);
    }
    let stored: i64 = rounds.iter().map(|r| r.events).sum();
    let first = rounds.first().map_or(0, |r| r.rss_after) as f64;
    let last = rounds.last().map_or(0, |r| r.rss_after) as f64;
    let growth = (last - first) / 1048576.0;
    let later_events: i64 = rounds.iter().skip(1).map(|r| r.events).sum();
    let verdict = if growth < 16.0 + first / 1048576.0 * 0.25 {
        "flat"
    } else {
        "GROWS"
    };
    println!(
        "soak: {stored} events stored; RSS after round 1 {:.1} MiB, after round {ROUNDS} {:.1} MiB ({growth:+.1} MiB over {later_events} more events): {verdict}",
        first / 1048576.0,
        last / 1048576.0
    );
    if verdict != "flat" {
        std::process::exit(1);
    }
}
