//! The spine end to end: the real `pushpals` binary serving a temporary
//! repository, driven through its own command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use pushpals_test_support::TempRepo;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pushpals");

/// A running `pushpals serve`, killed on drop.
struct Server {
    child: Child,
    url: String,
    data_dir: PathBuf,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn isolated(command: &mut std::process::Command, data_dir: &Path) {
    command
        .env("PUSHPALS_DATA_DIR", data_dir)
        .env("XDG_CONFIG_HOME", data_dir.join("config-home"))
        .env_remove("PUSHPALS_TOKEN")
        .env_remove("PUSHPALS_URL");
}

fn start_server(repo: &Path, data_dir: &Path) -> Server {
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(repo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    isolated(&mut command, data_dir);
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(rest) = line.trim().strip_prefix("API:") {
            let address = rest.split_whitespace().next().unwrap();
            break address.trim_end_matches("/api/v1/").to_owned();
        }
    };
    // Keep draining stderr (the server's log) so the server never blocks
    // on a full pipe; keep it for tests that read it.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    Server {
        child,
        url,
        data_dir: data_dir.to_path_buf(),
        log,
    }
}

impl Server {
    fn cli(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env("PUSHPALS_URL", &self.url)
            .env("PUSHPALS_DATA_DIR", &self.data_dir)
            .env_remove("PUSHPALS_TOKEN")
            .timeout(Duration::from_secs(60));
        command
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.cli().args(args).arg("--json").output().unwrap();
        assert!(
            output.status.success(),
            "pushpals {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn wait_for_state(&self, task: &str, state: &str) -> Value {
        for _ in 0..600 {
            let view = self.json(&["status", task]);
            let current = view["task"]["state"].as_str().unwrap().to_owned();
            if current == state {
                return view;
            }
            assert!(
                !["failed", "cancelled", "no_changes", "interrupted"].contains(&current.as_str()),
                "task {task} ended as {current}: {}",
                view["task"]["reason"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("task {task} never reached {state}");
    }

    fn events(&self, task: &str) -> Vec<Value> {
        let output = self.cli().args(["log", task, "--json"]).output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// The [start, end] times of a task's worker command, from its events.
fn worker_interval(events: &[Value]) -> (String, String) {
    let time_of = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["payload"]["step"] == "worker")
            .map(|e| e["time"].as_str().unwrap().to_owned())
            .unwrap()
    };
    (time_of("command_started"), time_of("command_finished"))
}

#[test]
fn two_concurrent_tasks_from_request_to_approved_commit_with_a_verifiable_audit_trail() {
    let repo = TempRepo::new();
    repo.write("src/other.rs", "pub fn foo_too() {}\n");
    repo.commit_all("second file");
    // The person's own state: an uncommitted file and a staged change.
    repo.write("scratch.txt", "mine, uncommitted\n");
    repo.write("README.md", "# demo\nstaged line\n");
    repo.git(&["add", "README.md"]);
    let head_before = repo.git(&["rev-parse", "HEAD"]);
    let index_before = repo.git(&["diff", "--cached"]);
    let status_before = repo.git(&["status", "--porcelain"]);

    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());

    let rename = server.json(&[
        "task",
        "Rename foo to bar",
        "--run",
        "sleep 1.5 && sed -i s/foo/bar/g src/lib.rs",
    ]);
    let other = server.json(&[
        "task",
        "Rename foo_too",
        "--run",
        "sleep 1.5 && sed -i s/foo_too/baz/g src/other.rs",
    ]);
    let rename_id = rename["id"].as_str().unwrap().to_owned();
    let other_id = other["id"].as_str().unwrap().to_owned();

    server.wait_for_state(&rename_id, "awaiting_approval");
    server.wait_for_state(&other_id, "awaiting_approval");

    // They ran at the same time: their worker commands overlap.
    let (a_start, a_end) = worker_interval(&server.events(&rename_id));
    let (b_start, b_end) = worker_interval(&server.events(&other_id));
    assert!(
        a_start < b_end && b_start < a_end,
        "no overlap: {a_start}..{a_end} vs {b_start}..{b_end}"
    );

    // Each diff holds only its own change.
    let diff = server.json(&["diff", &rename_id]);
    assert_eq!(diff["files"].as_array().unwrap().len(), 1);
    assert_eq!(diff["files"][0]["path"], "src/lib.rs");
    assert!(diff["diff"].as_str().unwrap().contains("+pub fn bar() {}"));
    let plain = server.cli().args(["diff", &other_id]).output().unwrap();
    assert!(
        String::from_utf8(plain.stdout)
            .unwrap()
            .contains("+pub fn baz() {}")
    );

    // `log --follow` on a task that waits for approval prints and returns.
    let followed = server
        .cli()
        .args(["log", &rename_id, "--follow"])
        .output()
        .unwrap();
    assert!(followed.status.success());
    assert!(
        String::from_utf8(followed.stdout)
            .unwrap()
            .contains("checking → awaiting_approval")
    );

    let approved = server.cli().args(["approve", &rename_id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(
        String::from_utf8(approved.stdout)
            .unwrap()
            .starts_with("Committed ")
    );
    let denied = server
        .cli()
        .args(["deny", &other_id, "--reason", "not this one"])
        .output()
        .unwrap();
    assert!(denied.status.success());

    // The commit is on the task's branch with the expected message.
    let branch = format!("pushpals/{rename_id}");
    let message = repo.git(&["log", "-1", "--format=%B", &branch]);
    assert!(message.starts_with("Rename foo to bar\n\n"), "{message}");
    assert!(
        message.contains("Ran: sleep 1.5 && sed -i s/foo/bar/g src/lib.rs"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Pushpals-Task: {rename_id}")),
        "{message}"
    );
    assert_eq!(
        repo.git(&["rev-parse", &format!("{branch}~1")]),
        head_before
    );
    assert_eq!(
        repo.git(&["show", &format!("{branch}:src/lib.rs")]),
        "pub fn bar() {}"
    );

    // The denied task: rejected, with its branch left for inspection and no commit.
    let view = server.json(&["status", &other_id]);
    assert_eq!(view["task"]["state"], "rejected");
    assert_eq!(view["approvals"][0]["reason"], "not this one");
    assert_eq!(
        repo.git(&["rev-parse", &format!("pushpals/{other_id}")]),
        head_before
    );

    // The person's checkout: same branch, same HEAD, same index, same files.
    assert_eq!(repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head_before);
    assert_eq!(repo.git(&["diff", "--cached"]), index_before);
    assert_eq!(repo.git(&["status", "--porcelain"]), status_before);
    assert_eq!(repo.read("scratch.txt"), "mine, uncommitted\n");
    assert_eq!(repo.read("src/lib.rs"), "pub fn foo() {}\n");

    // Approving again is a conflict, not a second commit.
    let again = server.cli().args(["approve", &rename_id]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no pending approval"));

    // The audit chain holds...
    let verified = server.cli().args(["audit", "verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let report = server.json(&["audit", "verify"]);
    assert_eq!(report["ok"], true);
    let head_id = report["head_id"].as_i64().unwrap();

    // ...and names the event whose byte was changed.
    let target = server
        .events(&rename_id)
        .into_iter()
        .find(|e| e["kind"] == "command_started")
        .unwrap();
    let target_id = target["id"].as_i64().unwrap();
    let db = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
    db.execute_batch("DROP TRIGGER events_no_update").unwrap();
    let changed = db
        .execute(
            "UPDATE events SET payload = replace(payload, 'sleep 1.5', 'sleep 1.6') WHERE id = ?1",
            [target_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let broken = server.cli().args(["audit", "verify"]).output().unwrap();
    assert!(!broken.status.success());
    let text = String::from_utf8(broken.stdout).unwrap();
    assert!(
        text.contains(&format!("BROKEN at event #{target_id}")),
        "{text}"
    );
    let report = server
        .cli()
        .args(["audit", "verify", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["first_broken_event"], target_id);
    assert_eq!(report["head_id"], head_id);

    // The export has every event.
    let export = server.cli().args(["audit", "export"]).output().unwrap();
    assert!(export.status.success());
    assert_eq!(
        String::from_utf8(export.stdout).unwrap().lines().count() as i64,
        head_id
    );
}

#[test]
fn log_follow_streams_a_running_task_until_it_waits_and_cancel_and_rm_clean_up() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let task = server.json(&[
        "task",
        "Say hello",
        "--run",
        "sleep 0.5; echo hello from the task; sleep 0.5; echo more > f.txt",
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    let followed = server
        .cli()
        .args(["log", &id, "--follow"])
        .output()
        .unwrap();
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let text = String::from_utf8(followed.stdout).unwrap();
    assert!(text.contains("hello from the task\n"), "{text}");
    assert!(
        text.trim_end().ends_with("checking → awaiting_approval"),
        "{text}"
    );

    let slow = server.json(&["task", "Slow", "--run", "sleep 60"]);
    let slow_id = slow["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&slow_id, "running");
    let cancelled = server.cli().args(["cancel", &slow_id]).output().unwrap();
    assert!(cancelled.status.success());
    assert_eq!(
        server.json(&["status", &slow_id])["task"]["state"],
        "cancelled"
    );
    let removed = server
        .cli()
        .args(["task", "rm", &slow_id])
        .output()
        .unwrap();
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(
        repo.git(&["branch", "--list", &format!("pushpals/{slow_id}")])
            .is_empty()
    );

    // Commands run in the sandbox.
    let started: Vec<Value> = server
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "command_started")
        .collect();
    assert_eq!(
        started[0]["payload"]["backend"], "bubblewrap",
        "{started:?}"
    );

    // A command no rule covers waits for the person; approving it runs it.
    let asked = server.json(&[
        "task",
        "Unknown tool",
        "--run",
        "frobnicate || echo fallback > f.txt",
    ]);
    let asked_id = asked["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state(&asked_id, "waiting");
    assert_eq!(view["approvals"][0]["action"], "command");
    let followed = server
        .cli()
        .args(["log", &asked_id, "--follow"])
        .output()
        .unwrap();
    let text = String::from_utf8(followed.stdout).unwrap();
    assert!(text.contains("policy: ask"), "{text}");
    let approved = server.cli().args(["approve", &asked_id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    server.wait_for_state(&asked_id, "awaiting_approval");
    assert!(
        server.json(&["diff", &asked_id])["diff"]
            .as_str()
            .unwrap()
            .contains("+fallback")
    );

    // --approve-run approves it in the same gesture; a denied command still never runs.
    let preapproved = server.json(&[
        "task",
        "Pre",
        "--run",
        "frobnicate || echo pre > g.txt",
        "--approve-run",
    ]);
    server.wait_for_state(preapproved["id"].as_str().unwrap(), "awaiting_approval");
    let denied = server.json(&["task", "Push", "--run", "git push", "--approve-run"]);
    let denied_id = denied["id"].as_str().unwrap();
    for _ in 0..200 {
        if server.json(&["status", denied_id])["task"]["state"] == "failed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let view = server.json(&["status", denied_id]);
    assert_eq!(view["task"]["state"], "failed");
    assert!(
        view["task"]["reason"]
            .as_str()
            .unwrap()
            .contains("policy denies"),
        "{view}"
    );

    // A task that is still waiting cannot be removed.
    let refused = server.cli().args(["task", "rm", &id]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("HTTP 409"));
}

#[test]
fn the_secret_gate_blocks_a_commit_until_each_finding_is_marked_a_false_positive() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    const AWS_KEY: &str = "AKIAQWERTYUIOPASDFGH";
    // The command assembles the secrets, so their values are not in the
    // command line itself: they come from the work, as a worker's would.
    let task = server.json(&[
        "task",
        "Add config",
        "--run",
        "printf 'KEY = \"%s%s\"\\n' AKIAQWERTY UIOPASDFGH > config.py && printf -- '-----BEGIN RSA %s KEY-----\\nMIIBOgIBAAJBAK\\n' PRIVATE > key.txt && cat config.py",
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state(&id, "awaiting_approval");
    assert!(
        view["approvals"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("BLOCKED by the secret gate (2 possible secrets)"),
        "{view}"
    );

    let refused = server.cli().args(["approve", &id]).output().unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(message.contains("blocked by the secret gate"), "{message}");
    assert!(
        message.contains("config.py:1 aws-access-key-id AKIA… (20 characters)"),
        "{message}"
    );
    assert!(message.contains("key.txt:1 private-key"), "{message}");
    assert_eq!(
        server.json(&["status", &id])["task"]["state"],
        "awaiting_approval"
    );

    // The value is nowhere: not in the events, the diff, the log, the API.
    let diff = server.json(&["diff", &id]);
    assert!(
        diff["diff"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:aws-access-key-id]")
    );
    let findings = diff["secret_findings"].as_array().unwrap().clone();
    assert_eq!(findings.len(), 2);
    let db = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
    let in_events: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM events WHERE payload LIKE ?1",
            [format!("%{AWS_KEY}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_events, 0, "the key is in the events table");
    let in_blobs: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM blobs WHERE CAST(content AS TEXT) LIKE ?1",
            [format!("%{AWS_KEY}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_blobs, 0, "the key is in a stored blob");
    let log = server.cli().args(["log", &id, "--json"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&log.stdout).contains(AWS_KEY));
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("[REDACTED:aws-access-key-id]"),
        "the output was redacted"
    );
    let export = server.cli().args(["audit", "export"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&export.stdout).contains(AWS_KEY));
    assert!(!server.log.lock().unwrap().contains(AWS_KEY));

    // A made-up fingerprint and a missing reason are refused.
    let wrong = server
        .cli()
        .args(["false-positive", &id, "0000", "--reason", "x"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no secret finding 0000"));
    let blank = server
        .cli()
        .args([
            "false-positive",
            &id,
            findings[0]["fingerprint"].as_str().unwrap(),
            "--reason",
            " ",
        ])
        .output()
        .unwrap();
    assert!(!blank.status.success());

    // Each finding overridden, with a reason: the commit goes ahead, and the
    // overrides are in the audit log.
    for finding in &findings {
        let fingerprint = finding["fingerprint"].as_str().unwrap();
        let marked = server
            .cli()
            .args([
                "false-positive",
                &id,
                fingerprint,
                "--reason",
                "test fixture, not a real key",
            ])
            .output()
            .unwrap();
        assert!(
            marked.status.success(),
            "{}",
            String::from_utf8_lossy(&marked.stderr)
        );
    }
    let approved = server.cli().args(["approve", &id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let overrides: Vec<Value> = server
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "secret_override")
        .collect();
    assert_eq!(overrides.len(), 2);
    assert_eq!(overrides[0]["actor"], "user:admin");
    assert_eq!(
        overrides[0]["payload"]["reason"],
        "test fixture, not a real key"
    );
}

#[test]
fn a_command_granted_network_reaches_allowlisted_hosts_only_and_it_is_audited() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let config_dir = data.path().join("config-home/pushpals");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        "[network]\nallow = [\"localhost\"]\n",
    )
    .unwrap();
    // A host-side web page.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello-from-host");
        }
    });
    let server = start_server(&repo.path, data.path());

    // curl needs the network: policy asks; approving it runs it through the proxy.
    let task = server.json(&[
        "task",
        "Fetch",
        "--run",
        &format!("curl -s http://localhost:{port}/ > page.txt; curl -s http://127.0.0.1:{port}/ > refused.txt; true"),
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "waiting");
    let approved = server.cli().args(["approve", &id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    server.wait_for_state(&id, "awaiting_approval");
    let diff = server.json(&["diff", &id]);
    let text = diff["diff"].as_str().unwrap();
    assert!(text.contains("+hello-from-host"), "{text}");
    assert!(text.contains("refused this connection"), "{text}");
    let events = server.events(&id);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "network_allowed" && e["payload"]["host"] == "localhost")
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "network_refused" && e["payload"]["host"] == "127.0.0.1")
    );
    let decision = events
        .iter()
        .find(|e| e["kind"] == "policy_decision")
        .unwrap();
    assert_eq!(decision["payload"]["network"], true);

    // A command not granted network has none at all.
    let offline = server.json(&["task", "Offline", "--run", &format!("echo x > a.txt; bash -c 'cat < /dev/tcp/127.0.0.1/{port}' > b.txt && echo reached > c.txt; true")]);
    let offline_id = offline["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&offline_id, "awaiting_approval");
    let diff = server.json(&["diff", &offline_id]);
    let text = diff["diff"].as_str().unwrap();
    assert!(!text.contains("hello-from-host"), "{text}");
    assert!(!text.contains("c.txt"), "{text}");
}
