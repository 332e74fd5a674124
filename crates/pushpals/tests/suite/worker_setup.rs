//! Real projects that need a setup step, on a worker host: the setup is
//! asked for once on the server, runs on the worker in a tree of the base
//! with network only to its registry (through the server's proxy), and the
//! worker keeps what it made as a warm cache of its own: the second task
//! on that worker starts from it, asking nothing, and what the cache
//! brought stays out of the task's diff.

use super::real_setup::{commit_config, two_tasks};
use std::process::Command;

/// Starts a worker host offering `labels` for `server`; its home.
fn worker(
    server: &super::support::Server,
    name: &str,
    labels: &str,
    env: &[(&str, &std::path::Path)],
) -> (std::process::Child, tempfile::TempDir) {
    let created = server.json(&["worker", "token", "--name", name, "--labels", labels]);
    let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
    let home = tempfile::tempdir().unwrap();
    let mut host = Command::new(super::support::BIN);
    host.args(["worker", "--server", &server.url, "--token", &enrolment])
        .env("PUSHPALS_DATA_DIR", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env_remove("PUSHPALS_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (name, value) in env {
        host.env(name, value);
    }
    (host.spawn().unwrap(), home)
}

/// Every task went to worker `name`, and got its cache there.
fn ran_warm_on(events: &[serde_json::Value], name: &str) {
    let placed = events.iter().find(|e| e["kind"] == "task_placed").unwrap();
    assert_eq!(placed["payload"]["worker"], name);
    let used = events.iter().find(|e| e["kind"] == "cache_used").unwrap();
    assert_eq!(used["payload"]["method"], format!("worker {name}"));
}

#[test]
fn itsdangerous_gets_its_virtual_environment_once_on_a_worker_and_pytest_passes_there() {
    let dir = tempfile::tempdir().unwrap();
    let repo = super::real_projects::clone_bundle("itsdangerous", dir.path());
    commit_config(
        &repo,
        "[setup]\n\
         command = \"python3 -m venv .venv && .venv/bin/pip install -q -e . pytest freezegun\"\n\
         network = [\"pypi\"]\n\
         [checks]\n\
         test = \"pytest -q\"\n",
    );
    let data = tempfile::tempdir().unwrap();
    super::support::write_config(data.path(), "[workers]\nlocal = false\n");
    let server = super::support::start_server(&repo, data.path());
    let (mut host, home) = worker(&server, "py-1", "python", &[]);
    let (first, second) = two_tasks(&server, "README.md");
    let _ = host.kill();
    let _ = host.wait();
    ran_warm_on(&first, "py-1");
    ran_warm_on(&second, "py-1");
    // The setup ran on the worker (its output came from there), and the
    // cache it made is the worker's: nothing was built on this machine.
    let built = first.iter().find(|e| e["kind"] == "cache_built").unwrap();
    let entries = built["payload"]["entries"].to_string();
    assert!(entries.contains(".venv"), "{entries}");
    let caches = super::caches_dir(data.path());
    let here = std::fs::read_dir(&caches).map(|d| d.count()).unwrap_or(0);
    assert_eq!(here, 0, "a cache was built on the server");
    let kept: Vec<_> = std::fs::read_dir(home.path().join("worker/warm"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("manifest.json").is_file())
        .collect();
    assert_eq!(kept.len(), 1, "one cache kept on the worker");
    assert!(
        !std::fs::read_dir(home.path().join("worker/warm"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".build-")),
        "builds are gone"
    );
}

#[test]
fn itoa_fetches_its_crates_once_on_a_worker_and_tests_offline_there() {
    let dir = tempfile::tempdir().unwrap();
    let repo = super::real_projects::clone_bundle("itoa", dir.path());
    commit_config(
        &repo,
        "[setup]\n\
         command = \"cargo fetch\"\n\
         network = [\"cargo\"]\n\
         [checks]\n\
         test = \"cargo test --offline\"\n",
    );
    let data = tempfile::tempdir().unwrap();
    super::support::write_config(data.path(), "[workers]\nlocal = false\n");
    let server = super::support::start_server(&repo, data.path());
    let (mut host, _home) = worker(&server, "rust-1", "cargo", &[]);
    let (first, second) = two_tasks(&server, "README.md");
    let _ = host.kill();
    let _ = host.wait();
    ran_warm_on(&first, "rust-1");
    ran_warm_on(&second, "rust-1");
    // The crates came into the setup's own cargo home on the worker, and
    // the warm-up's build outputs with them; the check ran at the stable
    // path, where they were made.
    let built = first.iter().find(|e| e["kind"] == "cache_built").unwrap();
    let entries = built["payload"]["entries"].to_string();
    assert!(
        entries.contains(".pushpals") && entries.contains("target"),
        "{entries}"
    );
    let warm = &built["payload"]["warm_checks"][0];
    assert_eq!(warm["passed"], true, "{built}");
    let check: String = second
        .iter()
        .filter(|e| e["kind"] == "output" && e["payload"]["step"] == "check:test")
        .filter_map(|e| e["payload"]["text"].as_str())
        .collect();
    assert!(check.contains("test result: ok"), "{check}");
    assert!(check.contains("(/workspace/repo-itoa)"), "{check}");
}
