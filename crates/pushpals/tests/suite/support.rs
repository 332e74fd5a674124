//! Running the real server and its command line for the tests.

use assert_cmd::Command;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_pushpals");

/// A running `pushpals serve`, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Task worktrees may be overlays: unmount them, as a reboot would
        // (a server started again on this data dir mounts them again).
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let data = self.data_dir.to_string_lossy().into_owned();
        for point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
            if point.starts_with(&data) {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(point)
                    .status();
            }
        }
    }
}

/// Writes the server's `config.toml` for a data dir set up by [`isolated`].
pub(crate) fn write_config(data_dir: &Path, text: &str) {
    let dir = data_dir.join("config-home/pushpals");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

pub(crate) fn isolated(command: &mut std::process::Command, data_dir: &Path) {
    command
        .env("PUSHPALS_DATA_DIR", data_dir)
        .env("XDG_CONFIG_HOME", data_dir.join("config-home"))
        .env_remove("PUSHPALS_TOKEN")
        .env_remove("PUSHPALS_URL");
}

/// A fresh repository and data dir with a server on them; bind all three
/// (`let (_repo, _data, server) = served();`) so they live together.
pub(crate) fn served() -> (pushpals_test_support::TempRepo, tempfile::TempDir, Server) {
    let repo = pushpals_test_support::TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    (repo, data, server)
}

pub(crate) fn start_server(repo: &Path, data_dir: &Path) -> Server {
    start_server_with_env(repo, data_dir, &[])
}

/// Starts a server with extra environment variables (API keys).
pub(crate) fn start_server_with_env(repo: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut command = std::process::Command::new(BIN);
    command.envs(env.iter().copied());
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(repo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    isolated(&mut command, data_dir);
    attach(command, data_dir)
}

/// Starts a server listening on `addr` (a fixed port a worker host can
/// find again after a restart).
pub(crate) fn start_server_at(repo: &Path, data_dir: &Path, addr: &str) -> Server {
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--addr", addr, "--repo"])
        .arg(repo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    isolated(&mut command, data_dir);
    attach(command, data_dir)
}

/// Starts a server in `cwd` with a relative `--data-dir`, as a person
/// typing `pushpals serve --data-dir d1` would.
pub(crate) fn start_server_in(repo: &Path, cwd: &Path, relative_data_dir: &str) -> Server {
    let data_dir = cwd.join(relative_data_dir);
    let mut command = std::process::Command::new(BIN);
    command
        .current_dir(cwd)
        .args(["--data-dir", relative_data_dir])
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(repo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    isolated(&mut command, &data_dir);
    command.env_remove("PUSHPALS_DATA_DIR");
    attach(command, &data_dir)
}

/// Spawns the server command and reads its address from its log.
fn attach(mut command: std::process::Command, data_dir: &Path) -> Server {
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
    /// Stops the server as a service manager does (SIGTERM) and waits for
    /// it to exit.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }

    pub(crate) fn cli(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env("PUSHPALS_URL", &self.url)
            .env("PUSHPALS_DATA_DIR", &self.data_dir)
            .env_remove("PUSHPALS_TOKEN")
            .timeout(Duration::from_secs(60));
        command
    }

    /// The names `pushpals repo list` shows.
    pub(crate) fn repo_names(&self) -> Vec<String> {
        let listed = self.json(&["repo", "list"]);
        listed["repos"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let output = self.cli().args(args).arg("--json").output().unwrap();
        assert!(
            output.status.success(),
            "pushpals {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Creates a command task and waits until it is in `state`; its id
    /// and view.
    pub(crate) fn task_until(&self, title: &str, line: &str, state: &str) -> (String, Value) {
        let created = self.json(&["task", title, "--run", line]);
        let id = created["id"].as_str().unwrap().to_owned();
        let view = self.wait_for_state(&id, state);
        (id, view)
    }

    pub(crate) fn wait_for_state(&self, task: &str, state: &str) -> Value {
        self.wait_for_state_within(task, state, Duration::from_secs(120))
    }

    /// As `wait_for_state`, for tasks that build a project.
    pub(crate) fn wait_for_state_within(&self, task: &str, state: &str, limit: Duration) -> Value {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
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

    pub(crate) fn events(&self, task: &str) -> Vec<Value> {
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
pub(crate) fn worker_interval(events: &[Value]) -> (String, String) {
    let time_of = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["payload"]["step"] == "worker")
            .map(|e| e["time"].as_str().unwrap().to_owned())
            .unwrap()
    };
    (time_of("command_started"), time_of("command_finished"))
}
