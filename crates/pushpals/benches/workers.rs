//! Tasks per minute through worker hosts: twelve short command tasks run
//! by this machine itself (the floor: no worker in between), by one worker
//! host (one run at a time, then three) and by three, all on this machine, so what shows is the overhead of
//! handing runs out (bundle, clone, output and diff over HTTP), not a
//! speed-up. For each: tasks a minute, the ratio to the floor, and the
//! time a task spent between its creation and its command starting, and
//! waiting for a worker.
//!
//! `cargo bench -p pushpals --bench workers`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_test_support::TempRepo;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pushpals");
const TASKS: usize = 12;

/// A process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The CLI against the server, as JSON.
fn cli(url: &str, data: &Path, args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env("PUSHPALS_URL", url)
        .env("PUSHPALS_DATA_DIR", data)
        .env_remove("PUSHPALS_TOKEN")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A task's events (`log --json` prints one a line).
fn log(url: &str, data: &Path, task: &str) -> Vec<Value> {
    let output = Command::new(BIN)
        .args(["log", task, "--json"])
        .env("PUSHPALS_URL", url)
        .env("PUSHPALS_DATA_DIR", data)
        .env_remove("PUSHPALS_TOKEN")
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Enrols and starts `count` worker hosts; waits until each has asked
/// for work.
fn workers(url: &str, data: &Path, count: usize, slots: u32, homes: &Path) -> Vec<Running> {
    let mut running = Vec::new();
    for i in 0..count {
        let name = format!("bench-{i}");
        let created = cli(url, data, &["worker", "token", "--name", &name]);
        let home = homes.join(&name);
        let child = Command::new(BIN)
            .args([
                "worker",
                "--server",
                url,
                "--slots",
                &slots.to_string(),
                "--token",
            ])
            .arg(created["enrolment_token"].as_str().unwrap())
            .env("PUSHPALS_DATA_DIR", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env_remove("PUSHPALS_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        running.push(Running(child));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = cli(url, data, &["workers"]);
        let ready = listed["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["enrolled_at"].is_string())
            .count();
        if ready == count {
            // A moment for their first ask for work.
            std::thread::sleep(Duration::from_millis(500));
            return running;
        }
        assert!(Instant::now() < deadline, "workers did not enrol: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds between two event times.
fn between(from: &str, to: &str) -> f64 {
    let parse = |t: &str| pushpals_core::timestamp::parse(t).unwrap();
    (parse(to) - parse(from)).as_seconds_f64()
}

/// What one round measured.
struct Round {
    per_minute: f64,
    queued: f64,
    waited: f64,
}

/// Twelve tasks through a server with `config` and `count` workers, each
/// running `slots` at once.
fn round(config: &str, count: usize, slots: u32) -> Round {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let homes = tempfile::tempdir().unwrap();
    let server =
        pushpals_test_support::ServeProcess::start(BIN, &repo.path, data.path(), config, &[]);
    let url = server.url.clone();
    let _workers = workers(&url, data.path(), count, slots, homes.path());
    let started = Instant::now();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| {
            let command = format!("echo {i} > OUT.md");
            let created = cli(&url, data.path(), &["task", "short", "--run", &command]);
            created["id"].as_str().unwrap().to_owned()
        })
        .collect();
    for id in &ids {
        loop {
            let view = cli(&url, data.path(), &["status", id]);
            match view["task"]["state"].as_str().unwrap() {
                "awaiting_approval" => break,
                "failed" | "no_changes" | "cancelled" => panic!("{id}: {view}"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    let (mut queued, mut waited) = (0.0, 0.0);
    for id in &ids {
        let events = log(&url, data.path(), id);
        let created = events.iter().find(|e| e["kind"] == "task_created").unwrap();
        let command = events
            .iter()
            .find(|e| e["kind"] == "command_started")
            .unwrap();
        queued += between(
            created["time"].as_str().unwrap(),
            command["time"].as_str().unwrap(),
        );
        waited += events
            .iter()
            .find(|e| e["kind"] == "task_placed")
            .and_then(|e| e["payload"]["waited_ms"].as_f64())
            .unwrap_or(0.0)
            / 1000.0;
    }
    Round {
        per_minute: TASKS as f64 / took * 60.0,
        queued: queued / TASKS as f64,
        waited: waited / TASKS as f64,
    }
}

fn main() {
    let floor = round("max_parallel = 3\n", 0, 1);
    let remote = "max_parallel = 3\n[workers]\nlocal = false\n";
    let one = round(remote, 1, 1);
    let one_three_slots = round(remote, 1, 3);
    let three = round(remote, 3, 1);
    println!("{TASKS} short command tasks, at most 3 at once, on this machine");
    println!(
        "{:<28} {:>12} {:>8} {:>14} {:>18}",
        "", "tasks/min", "ratio", "queued (mean)", "waiting a worker"
    );
    for (name, r) in [
        ("this machine (floor)", &floor),
        ("1 worker host", &one),
        ("1 worker host, 3 at once", &one_three_slots),
        ("3 worker hosts", &three),
    ] {
        println!(
            "{name:<28} {:>12.1} {:>7.2}x {:>12.2} s {:>16.2} s",
            r.per_minute,
            r.per_minute / floor.per_minute,
            r.queued,
            r.waited
        );
    }
}
