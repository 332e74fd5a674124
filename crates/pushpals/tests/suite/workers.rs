//! `pushpals worker token` and `pushpals workers` against the real server:
//! a worker named, enrolled with its one-time token, listed and revoked;
//! and itoa's own test suite run as a task's check on a worker host.

use super::support::served;
use std::process::Command;

#[test]
fn a_worker_is_named_enrolled_listed_and_revoked_from_the_command_line() {
    let (_repo, _data, server) = served();
    let said = server
        .cli()
        .args([
            "worker",
            "token",
            "--name",
            "build-1",
            "--labels",
            "cargo,node",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&said.stdout).into_owned();
    assert!(
        said.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&said.stderr)
    );
    assert!(text.contains("build-1 (cargo, node)"), "{text}");
    let token = text.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("pp_"), "{text}");

    let listed = server.cli().arg("workers").output().unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.contains("waiting to enrol"), "{table}");

    let enrolled = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(format!(
            r#"{{"token":"{token}","cores":2,"version":"{}","time":"{}"}}"#,
            env!("CARGO_PKG_VERSION"),
            pushpals_core::timestamp::now()
        ))
        .arg(format!("{}/api/v1/workers/enrol", server.url))
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{enrolled:?}");
    let listed = server.cli().arg("workers").output().unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    let row = table.lines().find(|l| l.starts_with("build-1")).unwrap();
    assert!(
        row.contains("reporting") && row.contains("s ago"),
        "{table}"
    );

    let bad = server
        .cli()
        .args(["worker", "token", "--name", "../up"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name the worker"));

    let revoked = server
        .cli()
        .args(["workers", "--revoke", "build-1"])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    let listed = server.json(&["workers"]);
    assert!(listed["workers"][0]["revoked_at"].is_string(), "{listed}");
}

/// `pushpals worker` on a host of its own (a data directory of its own).
fn worker_host(
    server: &super::support::Server,
    home: &std::path::Path,
    token: Option<&str>,
) -> std::process::Child {
    let mut command = Command::new(super::support::BIN);
    command
        .args(["worker", "--server", &server.url])
        .env("PUSHPALS_DATA_DIR", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PUSHPALS_WORKER_REPORT_SECS", "1")
        .env_remove("PUSHPALS_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command.spawn().unwrap()
}

/// `pushpals doctor`'s `worker` check on the worker host.
fn doctor_says(server: &super::support::Server, home: &std::path::Path) -> serde_json::Value {
    doctor_check(home, server, "worker")
}

/// `pushpals doctor`'s check `name` on the worker host.
fn doctor_check(
    home: &std::path::Path,
    server: &super::support::Server,
    name: &str,
) -> serde_json::Value {
    let output = Command::new(super::support::BIN)
        .args(["doctor", "--json", "--server", &server.url])
        .env("PUSHPALS_DATA_DIR", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("PUSHPALS_TOKEN")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

/// The listed worker, once `ready` says it is as expected.
fn listed_until(
    server: &super::support::Server,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..200 {
        let listed = server.json(&["workers"]);
        if let Some(worker) = listed["workers"].as_array().and_then(|w| w.first())
            && ready(worker)
        {
            return worker.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the worker never got there: {}", server.json(&["workers"]));
}

#[test]
fn a_worker_host_enrols_once_reports_comes_back_with_its_token_and_stops_when_revoked() {
    use std::os::unix::fs::PermissionsExt;
    let (_repo, _data, server) = served();
    let created = server.json(&["worker", "token", "--name", "host-a", "--labels", "cargo"]);
    let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
    let home = tempfile::tempdir().unwrap();

    let mut host = worker_host(&server, home.path(), Some(&enrolment));
    let first = listed_until(&server, |w| w["enrolled_at"].is_string());
    let token_file = home.path().join("worker/token");
    // The server counts it enrolled once it answered; the host writes its
    // token just after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !token_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let saved = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(saved.trim(), enrolment, "the worker keeps its own token");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // It keeps reporting, and doctor on the host says the server takes it.
    listed_until(&server, |w| w["last_seen"] != first["last_seen"]);
    let fine = doctor_says(&server, home.path());
    assert_eq!(fine["status"], "ok", "{fine}");
    assert!(fine["detail"].to_string().contains("host-a"), "{fine}");
    // The cargo it offers runs in its sandbox, with its version said.
    let toolchain = doctor_check(home.path(), &server, "toolchain");
    assert_eq!(toolchain["status"], "ok", "{toolchain}");
    assert!(
        toolchain["detail"].to_string().contains("cargo: cargo 1."),
        "{toolchain}"
    );
    host.kill().unwrap();
    let _ = host.wait();

    // Started again without a token, it goes on with the one it kept.
    let mut again = worker_host(&server, home.path(), None);
    let before = server.json(&["workers"])["workers"][0]["last_seen"].clone();
    listed_until(&server, |w| w["last_seen"] != before);

    // Revoked, it stops and says why.
    server
        .cli()
        .args(["workers", "--revoke", "host-a"])
        .assert()
        .success();
    let stopped = std::time::Instant::now();
    let status = loop {
        if let Some(status) = again.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed().as_secs() < 30,
            "the revoked worker kept running"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut said = String::new();
    std::io::Read::read_to_string(&mut again.stderr.take().unwrap(), &mut said).unwrap();
    assert!(
        said.contains("no longer takes worker host-a's token"),
        "{said}"
    );

    // The used enrolment token does not enrol another host.
    let other = tempfile::tempdir().unwrap();
    let refused = worker_host(&server, other.path(), Some(&enrolment))
        .wait_with_output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("used already"), "{said}");
    assert!(!other.path().join("worker/token").exists());
    // Without a token at all, it says where to get one.
    let never = tempfile::tempdir().unwrap();
    let refused = worker_host(&server, never.path(), None)
        .wait_with_output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pushpals worker token"));
}

#[test]
fn itoas_own_tests_run_as_the_checks_of_a_task_on_a_worker_host() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, cargo_home) = super::real_projects::itoa_with_its_tests(dir.path());

    let data = tempfile::tempdir().unwrap();
    super::support::write_config(data.path(), "[workers]\nlocal = false\n");
    let server = super::support::start_server(&repo, data.path());
    let created = server.json(&["worker", "token", "--name", "rust-1", "--labels", "cargo"]);
    let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
    let home = tempfile::tempdir().unwrap();
    let mut host = Command::new(super::support::BIN);
    host.args(["worker", "--server", &server.url, "--token", &enrolment])
        .env("PUSHPALS_DATA_DIR", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("CARGO_HOME", &cargo_home)
        .env_remove("PUSHPALS_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut host = host.spawn().unwrap();

    let task = server.json(&[
        "task",
        "Reword the README",
        "--run",
        "sed -i '1s/$/ (edited)/' README.md",
    ]);
    let task = task["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state_within(
        &task,
        "awaiting_approval",
        std::time::Duration::from_secs(600),
    );
    // The worker's clone of the run goes once the run is over.
    let runs = home.path().join("worker/runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(std::time::Instant::now() < deadline, "the clone stayed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = host.kill();
    let _ = host.wait();
    let events = server.events(&task);
    // Placed by what itoa's files say it needs, on the worker that offers
    // it; its own test suite passed there, its output recorded here.
    let placed = events
        .iter()
        .find(|e| e["kind"] == "task_placed")
        .expect("the task went to a worker");
    assert_eq!(placed["payload"]["worker"], "rust-1");
    assert_eq!(placed["payload"]["needs"][0], "cargo");
    super::real_projects::assert_check_passed_unasked(&events);
    let said: String = events
        .iter()
        .filter(|e| e["kind"] == "output")
        .filter_map(|e| e["payload"]["text"].as_str())
        .collect();
    assert!(said.contains("test result: ok"), "{said}");
    // The artifact came from the worker's clone, with the run's change.
    let artifact = events
        .iter()
        .find(|e| e["kind"] == "artifact_published")
        .expect("the worker sent its artifact");
    assert_eq!(artifact["payload"]["path"], "README.md");
    let worktree = view["task"]["worktree_path"].as_str().unwrap();
    let readme = std::fs::read_to_string(std::path::Path::new(worktree).join("README.md")).unwrap();
    assert!(
        readme.lines().next().unwrap().ends_with("(edited)"),
        "{readme}"
    );
}

#[test]
fn a_server_killed_while_a_worker_runs_a_task_leaves_nothing_half_done() {
    let repo = pushpals_test_support::TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    super::support::write_config(data.path(), "[workers]\nlocal = false\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = super::support::start_server_at(&repo.path, data.path(), &addr);
    let created = server.json(&["worker", "token", "--name", "w", "--labels", ""]);
    let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
    let home = tempfile::tempdir().unwrap();
    let mut host = worker_host(&server, home.path(), Some(&enrolment));
    let task = server.json(&[
        "task",
        "slow",
        "--run",
        "echo started; sleep 30; echo done > OUT.md",
    ]);
    let task = task["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server
        .events(&task)
        .iter()
        .any(|e| e["kind"] == "output" && e["payload"]["text"] == "started\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let runs = home.path().join("worker/runs");
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 1);
    drop(server); // SIGKILL, mid-command on the worker

    let server = loop {
        // The port comes free once the killed server is gone.
        if std::net::TcpListener::bind(&addr).is_ok() {
            break super::support::start_server_at(&repo.path, data.path(), &addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The run was settled by the restart; the worker, still holding it, is
    // told to drop it: its command stops and its clone goes.
    let view = server.json(&["status", &task]);
    assert_eq!(view["task"]["state"], "interrupted", "{view}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker kept the old run: {:?}",
            std::fs::read_dir(&runs)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Continued, it runs on the worker again, whole, to its approval.
    server.cli().args(["continue", &task]).assert().success();
    let view = server.wait_for_state_within(
        &task,
        "awaiting_approval",
        std::time::Duration::from_secs(120),
    );
    let worktree = view["task"]["worktree_path"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(worktree).join("OUT.md")).unwrap(),
        "done\n"
    );
    let placed = server
        .events(&task)
        .into_iter()
        .filter(|e| e["kind"] == "task_placed")
        .count();
    assert_eq!(placed, 2);
    let _ = host.kill();
    let said = host.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&said.stdout);
    // The second run's base came from the worker's own cache.
    assert!(said.contains("its base was here already"), "{said}");
}
