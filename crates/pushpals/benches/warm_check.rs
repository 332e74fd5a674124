//! The second task's check on a real project, warm from the repository's
//! cache, against the floor: the host's own incremental build of the same
//! one-line change, in the same run. itoa (Rust, a dev-dependency fetched
//! into a cargo home of the bench's own); `cargo test --offline` is its
//! check. `cargo bench -p pushpals --bench warm_check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_test_support::ServeProcess;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pushpals");

fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, &Path)]) {
    let status = Command::new(program)
        .current_dir(dir)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{program} {args:?}");
}

fn cli(server: &ServeProcess, args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env("PUSHPALS_URL", &server.url)
        .env("PUSHPALS_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs a task to `awaiting_approval`; its check's duration.
fn task_check(server: &ServeProcess, line: &str) -> Duration {
    let id = cli(server, &["task", "Touch", "--run", line])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let state = cli(server, &["status", &id])["task"]["state"].clone();
        if state == "awaiting_approval" {
            break;
        }
        assert!(
            state != "failed" && Instant::now() < deadline,
            "{id}: {state}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = Command::new(BIN)
        .args(["log", &id, "--json"])
        .env("PUSHPALS_URL", &server.url)
        .env("PUSHPALS_TOKEN", &server.token)
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|e| e["kind"] == "command_finished" && e["payload"]["step"] == "check:test")
        .and_then(|e| e["payload"]["duration_ms"].as_u64())
        .map(Duration::from_millis)
        .unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/repos/itoa.bundle");
    let repo = dir.path().join("itoa");
    run(
        dir.path(),
        "git",
        &[
            "clone",
            "-q",
            "-b",
            "main",
            bundle.to_str().unwrap(),
            "itoa",
        ],
        &[],
    );
    std::fs::write(
        repo.join("pushpals.toml"),
        "[checks]\ntest = \"cargo test --offline\"\n",
    )
    .unwrap();
    let ident = ["-c", "user.name=b", "-c", "user.email=b@localhost"];
    run(
        &repo,
        "git",
        &[&ident[..], &["add", "pushpals.toml"]].concat(),
        &[],
    );
    run(
        &repo,
        "git",
        &[&ident[..], &["commit", "-q", "-m", "checks"]].concat(),
        &[],
    );
    let cargo_home = dir.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    run(
        &repo,
        "cargo",
        &["fetch", "-q"],
        &[("CARGO_HOME", &cargo_home)],
    );

    let data = dir.path().join("data");
    let server = ServeProcess::start(
        BIN,
        &repo,
        &data,
        "",
        &[("CARGO_HOME", cargo_home.to_str().unwrap())],
    );
    let first = task_check(&server, "sed -i '1s/$/ (edited)/' README.md");
    let second = task_check(&server, "sed -i '1s/^/\\/\\/ touched\\n/' src/lib.rs");
    drop(server);

    // The floor: the host builds the crate, then the same change again.
    run(
        &repo,
        "cargo",
        &["test", "--offline"],
        &[("CARGO_HOME", &cargo_home)],
    );
    let lib = repo.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("// touched\n{text}")).unwrap();
    let started = Instant::now();
    run(
        &repo,
        "cargo",
        &["test", "--offline"],
        &[("CARGO_HOME", &cargo_home)],
    );
    let host = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "itoa check: second task {:.0} ms (first task, after the cache was built, {:.0} ms); floor: the host's incremental build {:.0} ms; ratio {:.2} (goal <= 2)",
        ms(second),
        ms(first),
        ms(host),
        ms(second) / ms(host)
    );
    // Overlay worktrees a killed server leaves mounted go with the data.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let data = data.to_string_lossy().into_owned();
    for point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
        if point.starts_with(&data) {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}
