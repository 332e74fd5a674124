//! `pushpals worker token` and `pushpals workers` against the real server:
//! a worker named, enrolled with its one-time token, listed and revoked.

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
