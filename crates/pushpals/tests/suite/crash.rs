//! Crash safety: the server is killed with SIGKILL at random moments while
//! eight tasks stream output, and restarted each time. Every event a client
//! saw on the event stream is still there with the same hash, the chain
//! verifies, tasks that were running come back `interrupted` with their
//! worktree and branch (and can be run again), and queued tasks run.

use super::support::{Server, start_server, start_server_with_env, write_config};
use pushpals_test_support::TempRepo;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// About three seconds of output, a line every ten milliseconds.
const STREAM: &str = "for i in $(seq 1 300); do echo line $i; sleep 0.01; done";
const TASKS: usize = 8;
const ROUNDS: usize = 3;

type Seen = Arc<Mutex<BTreeMap<i64, String>>>;

/// Follows `/api/v1/events` with curl, recording each event's id and hash
/// as the client receives it.
fn follow(server: &Server, seen: &Seen) -> Child {
    let token = std::fs::read_to_string(server.data_dir.join("admin.token")).unwrap();
    let mut curl = Command::new("curl")
        .args(["-sN", "-H"])
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .arg(format!("{}/api/v1/events?after=0", server.url))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    let stdout = curl.stdout.take().unwrap();
    let seen = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(event) = serde_json::from_str::<Value>(data.trim())
            {
                let id = event["id"].as_i64().unwrap();
                let hash = event["hash"].as_str().unwrap().to_owned();
                seen.lock().unwrap().insert(id, hash);
            }
        }
    });
    curl
}

/// A pseudo-random pause between `low` and `high` milliseconds.
fn pause(low: u64, high: u64) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let ms = low + u64::from(nanos) % (high - low);
    std::thread::sleep(Duration::from_millis(ms));
}

/// Every task, in one call.
fn tasks(server: &Server) -> Vec<Value> {
    server.json(&["status"])["tasks"]
        .as_array()
        .unwrap()
        .clone()
}

/// How many tasks are in each state.
fn by_state(server: &Server) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for task in tasks(server) {
        *counts
            .entry(task["state"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Every event the client saw is stored with the same hash, and the chain
/// verifies.
fn check_nothing_lost(server: &Server, seen: &Seen) {
    let export = server.cli().args(["audit", "export"]).output().unwrap();
    assert!(export.status.success());
    let stored: BTreeMap<i64, String> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            (
                event["id"].as_i64().unwrap(),
                event["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the client saw events");
    for (id, hash) in seen.iter() {
        assert_eq!(
            stored.get(id),
            Some(hash),
            "event #{id} was acknowledged to a client and must survive the crash"
        );
    }
    let verify = server.json(&["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    killed_at_random_moments(&[]);
}

/// The crash test on the store `env` names (`PUSHPALS_DATABASE`), SQLite
/// in the data directory when it names none.
pub(crate) fn killed_at_random_moments(env: &[(&str, &str)]) {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(data.path(), "max_parallel = 2\n");
    let seen: Seen = Arc::default();
    let start_server =
        |repo: &std::path::Path, data: &std::path::Path| start_server_with_env(repo, data, env);

    let mut server = start_server(&repo.path, data.path());
    let mut ids = Vec::new();
    for n in 0..TASKS {
        let created = server.json(&[
            "task",
            &format!("stream {n}"),
            "--run",
            STREAM,
            "--approve-run",
        ]);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    let mut interrupted_ever: Vec<u64> = Vec::new();
    for round in 0..ROUNDS {
        let mut curl = follow(&server, &seen);
        // Kill while commands stream: wait until some task runs, then a
        // random moment more.
        for _ in 0..400 {
            if by_state(&server).contains_key("running") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        pause(200, 1200);
        drop(server); // SIGKILL
        std::thread::sleep(Duration::from_millis(200));
        let _ = curl.kill();
        let _ = curl.wait();

        server = start_server(&repo.path, data.path());
        check_nothing_lost(&server, &seen);
        let counts = by_state(&server);
        assert_eq!(
            counts.values().sum::<u64>(),
            TASKS as u64,
            "round {round}: every acknowledged task is there: {counts:?}"
        );
        interrupted_ever.push(counts.get("interrupted").copied().unwrap_or(0));
    }

    // Left alone, every task settles: queued ones ran.
    for _ in 0..600 {
        let counts = by_state(&server);
        if counts
            .keys()
            .all(|s| ["interrupted", "no_changes"].contains(&s.as_str()))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let settled: Vec<(String, Value)> = tasks(&server)
        .into_iter()
        .map(|t| (t["state"].as_str().unwrap().to_owned(), t))
        .collect();
    assert_eq!(settled.len(), ids.len());
    for (state, task) in &settled {
        assert!(
            ["interrupted", "no_changes"].contains(&state.as_str()),
            "{task}"
        );
    }
    assert!(
        settled.iter().any(|(s, _)| s == "no_changes"),
        "queued tasks ran to their end after a restart"
    );
    assert!(
        interrupted_ever.iter().any(|&n| n > 0),
        "a kill hit a running task"
    );

    // An interrupted task kept its worktree and branch, and runs again.
    let (_, task) = settled
        .iter()
        .find(|(s, t)| s == "interrupted" && t["worktree_path"].is_string())
        .expect("a task interrupted while running");
    let id = task["id"].as_str().unwrap();
    let worktree = task["worktree_path"].as_str().expect("worktree kept");
    assert!(std::path::Path::new(worktree).is_dir(), "{worktree}");
    let branch = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/heads/pushpals/{id}"))
        .current_dir(&repo.path)
        .status()
        .unwrap();
    assert!(branch.success(), "branch pushpals/{id} kept");
    let again = server
        .cli()
        .args(["continue", id, "--run", "echo again", "--approve-run"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    for _ in 0..400 {
        let view = server.json(&["status", id]);
        if view["task"]["state"] == "no_changes" {
            check_nothing_lost(&server, &seen);
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the retried task did not finish");
}

/// The processes whose command line holds `needle`: pid and command line.
fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
        if line.contains(needle) {
            found.push((pid, line));
        }
    }
    found
}

/// Waits up to `limit` for `done`; whether it came.
fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn a_server_killed_during_a_clone_leaves_no_git_running_and_its_next_start_sweeps_the_clone() {
    // A remote that takes the connection and never answers: the clone
    // hangs for as long as anybody lets it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/slow.git", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            open.push(stream);
        }
    });
    let (repo, data, server) = super::support::served();
    let mut adding = Command::new(super::support::BIN)
        .env("PUSHPALS_URL", &server.url)
        .env("PUSHPALS_DATA_DIR", data.path())
        .env_remove("PUSHPALS_TOKEN")
        .args(["repo", "add", &url, "--name", "slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ours = adding.id();
    let git_clone = || -> Vec<(u32, String)> {
        processes_with(&url)
            .into_iter()
            .filter(|(pid, line)| *pid != ours && line.contains("clone"))
            .collect()
    };
    assert!(
        within(Duration::from_secs(30), || !git_clone().is_empty()),
        "the clone never started"
    );

    // SIGKILL: the server cannot clean anything up.
    drop(server);
    assert!(
        within(Duration::from_secs(10), || git_clone().is_empty()),
        "git clone ran on without the server: {:?}",
        git_clone()
    );
    // A transport helper git left behind gives up once the remote has
    // sent nothing for 30 s.
    let anything = || -> Vec<(u32, String)> {
        processes_with(&url)
            .into_iter()
            .filter(|(pid, _)| *pid != ours)
            .collect()
    };
    assert!(
        within(Duration::from_secs(60), || anything().is_empty()),
        "still running: {:?}",
        anything()
    );
    let _ = adding.kill();
    let _ = adding.wait();

    // The next start sweeps the half-made clone; nothing is registered.
    let server = start_server(&repo.path, data.path());
    assert_eq!(server.repo_names(), ["repo"]);
    let homes: Vec<String> = std::fs::read_dir(data.path().join("repos"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!homes.iter().any(|h| h.starts_with("slow")), "{homes:?}");
}
