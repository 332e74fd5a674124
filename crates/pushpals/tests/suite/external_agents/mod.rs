//! External agents as workers, through the real server: each runs in the
//! task's sandbox with a private home, reaches its model only through the
//! gateway with the task's token, and its work is a task like any other.
//! One module per agent; the helpers they share are here.

mod aider;
mod claude_code;
mod codex;
mod command;
mod gemini_cli;
mod limits;
mod mini_swe_agent;
mod on_worker;
mod opencode;
mod openhands;

use super::support::{Server, start_server_with_env, write_config};
use pushpals_test_support::TempRepo;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

pub(super) const KEY: &str = "sk-test-external-0123456789abcdef";

/// `src/lib.rs` of the temporary repository once the agent added `bar`.
pub(super) const WITH_BAR: &str = "pub fn foo() {}\npub fn bar() {}\n";

/// A one-page HTTP server on the host's loopback, which no sandbox may reach.
pub(super) fn host_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nHOST-REACHED",
            );
        }
    });
    port
}

/// A shell tool's input (`{"<field>": "..."}`): add `bar` to src/lib.rs,
/// print the environment, and try the host's listener on `port`.
pub(super) fn edit_and_probe(field: &str, port: u16) -> String {
    let mut input = serde_json::Map::new();
    input.insert(
        field.to_owned(),
        Value::String(format!(
            "printf 'pub fn bar() {{}}\\n' >> src/lib.rs && env; curl -s --max-time 2 http://127.0.0.1:{port}/ || echo no-host"
        )),
    );
    input.insert(
        "description".to_owned(),
        Value::String("add bar".to_owned()),
    );
    Value::Object(input).to_string()
}

/// `GET /api/v1/metrics` with the admin token.
pub(super) fn metrics(server: &Server) -> String {
    let token = std::fs::read_to_string(server.data_dir.join("admin.token")).unwrap();
    let url = format!("{}/api/v1/metrics", server.url);
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Handle::current().block_on(async {
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// Waits until the task has ended (any final state) or waits for the
/// person; returns its view.
pub(super) fn wait_settled(server: &Server, id: &str) -> Value {
    for _ in 0..1200 {
        let view = server.json(&["status", id]);
        let state = view["task"]["state"].as_str().unwrap().to_owned();
        if [
            "awaiting_approval",
            "failed",
            "cancelled",
            "no_changes",
            "waiting",
        ]
        .contains(&state.as_str())
        {
            return view;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = server.events(id);
    let last = &events[events.len().saturating_sub(12)..];
    panic!("task {id} never settled; its last events: {last:#?}");
}

/// Waits until the task settles and checks it settled as `state`.
pub(super) fn settled_as(server: &Server, id: &str, state: &str) -> Value {
    let view = wait_settled(server, id);
    assert_eq!(view["task"]["state"], state, "{}", view["task"]["reason"]);
    view
}

/// The first event of `kind`.
pub(super) fn first_event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event"))
}

/// Checks that `started` (an `agent_started` event) names `version`.
pub(super) fn assert_version(started: &Value, version: &str) {
    assert!(
        started["payload"]["version"]
            .as_str()
            .unwrap_or_default()
            .contains(version),
        "{started}"
    );
}

pub(super) fn worktree_file(view: &Value, name: &str) -> String {
    let worktree = PathBuf::from(view["task"]["worktree_path"].as_str().unwrap());
    std::fs::read_to_string(worktree.join(name)).unwrap_or_default()
}

pub(super) fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Processes whose command line is exactly `words`.
pub(super) fn processes(words: &[&str]) -> usize {
    let wanted: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline")).is_ok_and(|line| line == wanted)
        })
        .count()
}

/// Where `.ci/run` installed the pinned agent `name` (see
/// `.ci/agent-versions`); `PUSHPALS_AGENTS_DIR` overrides the cache.
pub(super) fn installed_agent(name: &str, program: &str) -> PathBuf {
    pushpals_test_support::installed_agent(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        name,
        program,
    )
}

/// Runs `body` against a server on a temporary repository, configured by
/// `config` and given the model's key, once it has the task `[title,
/// prompt, agent]`: the prompt for the agent named.
pub(super) async fn agent_task<F>(config: &str, task: &[&str; 3], body: F)
where
    F: FnOnce(&Server, &str) + Send + 'static,
{
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(data.path(), config);
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let [title, prompt, agent] = task.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&["task", &title, "--agent", &prompt, "--with", &agent]);
        body(&server, created["id"].as_str().unwrap());
    })
    .await
    .unwrap();
}

/// A server configuration: the model `strong` speaking `protocol` at
/// `base`, its key in `$PUSHPALS_TEST_MODEL_KEY`, and the agent's program.
pub(super) fn agent_config(
    protocol: &str,
    base: &str,
    agent: &str,
    program: &std::path::Path,
) -> String {
    format!(
        "[models.strong]\nprotocol = \"{protocol}\"\nbase_url = \"{base}\"\nmodel = \"m-real\"\n\
         api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n[agents.{agent}]\nprogram = \"{}\"\n",
        program.display()
    )
}

/// Approves the task's pending command and waits until it runs.
pub(super) fn approve_command(server: &Server, id: &str) {
    let approved = server
        .cli()
        .args(["approve", id, "--action", "command"])
        .output()
        .unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    for _ in 0..200 {
        if server.json(&["status", id])["task"]["state"] != "waiting" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("task {id} still waits after the approval");
}

/// Rejects the task's commit, continues it with `feedback`, and waits for
/// the agent's second run to finish.
pub(super) fn reject_and_continue(server: &Server, id: &str, feedback: &str) {
    for args in [
        ["deny", id, "--action", "commit", "--reason", "not yet"].as_slice(),
        ["continue", id, "--feedback", feedback].as_slice(),
    ] {
        let output = server.cli().args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Python agents take seconds to start.
    for _ in 0..600 {
        let finished = server
            .events(id)
            .iter()
            .filter(|e| e["kind"] == "agent_finished")
            .count();
        if finished == 2 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("task {id}'s second run never finished");
}

/// Every request reached the provider with the real key in `header` and
/// the configured model.
pub(super) fn assert_real_key_and_model(
    requests: &[pushpals_test_support::Recorded],
    header: &str,
    key: &str,
) {
    assert!(!requests.is_empty());
    for request in requests {
        assert_eq!(request.header(header), Some(key), "{}", request.path);
        assert_eq!(request.body["model"], "m-real", "{}", request.path);
    }
}
