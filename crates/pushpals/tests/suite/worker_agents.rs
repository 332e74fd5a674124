//! The built-in agent's task on a real worker host, on itoa: the agent
//! (talking to the scripted model server from the server) writes a test,
//! runs it on the worker, where a command of its own then changes the
//! file; the agent reads that change back here, itoa's whole suite runs as
//! the check on the worker, and the task's diff holds both edits.

use pushpals_test_support::{Reply, ScriptedModel};
use std::process::Command;
use std::time::Duration;

const TEST_FILE: &str =
    "#[test]\nfn mirrored() {\n    assert_eq!(itoa::Buffer::new().format(7u8), \"7\");\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_task_on_itoa_runs_its_commands_and_checks_on_a_worker_host() {
    let content = serde_json::json!({ "path": "tests/mirror.rs", "content": TEST_FILE });
    let model = ScriptedModel::start(vec![
        Reply::tool("write_file", &content.to_string()),
        Reply::tool(
            "run_command",
            r#"{"command":"cargo test --offline --test mirror"}"#,
        ),
        Reply::tool(
            "run_command",
            r#"{"command":"sed -i s/mirrored/mirrored_on_worker/ tests/mirror.rs"}"#,
        ),
        Reply::tool("read_file", r#"{"path":"tests/mirror.rs"}"#),
        Reply::tool("finish", r#"{"summary":"Added a test."}"#),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (repo, cargo_home) = super::real_projects::itoa_with_its_tests(dir.path());
    let data = tempfile::tempdir().unwrap();
    super::support::write_config(
        data.path(),
        &format!(
            "[workers]\nlocal = false\n[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\n\
             model = \"m\"\nmax_retries = 0\n",
            model.openai_base()
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let (repo_path, data_path, home_path) = (
        repo.clone(),
        data.path().to_path_buf(),
        home.path().to_path_buf(),
    );
    let (events, (kept, built_here)) = tokio::task::spawn_blocking(move || {
        let server = super::support::start_server(&repo_path, &data_path);
        let created = server.json(&["worker", "token", "--name", "rust-1", "--labels", "cargo"]);
        let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
        let mut host = Command::new(super::support::BIN);
        host.args(["worker", "--server", &server.url, "--token", &enrolment])
            .env("PUSHPALS_DATA_DIR", &home_path)
            .env("XDG_CONFIG_HOME", home_path.join("config"))
            .env("CARGO_HOME", &cargo_home)
            .env_remove("PUSHPALS_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut host = host.spawn().unwrap();
        let task = server.json(&["task", "Add a test", "--agent", "Add a test of 7"]);
        let task = task["id"].as_str().unwrap().to_owned();
        let view =
            server.wait_for_state_within(&task, "awaiting_approval", Duration::from_secs(600));
        // The worker's clone of the run goes once the run is over.
        let runs = home_path.join("worker/runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) > 0 {
            assert!(std::time::Instant::now() < deadline, "the clone stayed");
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = host.kill();
        let _ = host.wait();
        let verified = server.cli().args(["audit", "verify"]).output().unwrap();
        assert!(verified.status.success(), "{verified:?}");
        let worktree = std::path::PathBuf::from(view["task"]["worktree_path"].as_str().unwrap());
        let kept = std::fs::read_to_string(worktree.join("tests/mirror.rs"));
        let kept = kept.unwrap_or_else(|e| {
            let listed = Command::new("git")
                .args(["status", "--short"])
                .current_dir(&worktree)
                .output()
                .unwrap();
            panic!("{e}: {}", String::from_utf8_lossy(&listed.stdout))
        });
        (
            server.events(&task),
            (kept, worktree.join("target").exists()),
        )
    })
    .await
    .unwrap();

    let placed = events
        .iter()
        .find(|e| e["kind"] == "task_placed")
        .expect("the agent's task went to a worker");
    assert_eq!(placed["payload"]["worker"], "rust-1");
    let output = |step: &str| -> String {
        events
            .iter()
            .filter(|e| e["kind"] == "output" && e["payload"]["step"] == step)
            .filter_map(|e| e["payload"]["text"].as_str())
            .collect()
    };
    // The worker's command saw the test the agent wrote here.
    let first = output("agent:1");
    assert!(first.contains("test mirrored ... ok"), "{first}");
    // The agent read back what the worker's command changed.
    let read_back = model
        .requests()
        .iter()
        .any(|r| r.body.to_string().contains("fn mirrored_on_worker()"));
    assert!(read_back, "the agent saw the worker's change");
    // itoa's own suite ran on the worker as the check, with the new test.
    super::real_projects::assert_check_passed_unasked(&events);
    let check = output("check:test");
    assert!(check.contains("test mirrored_on_worker ... ok"), "{check}");
    // The server's worktree holds both edits, for the diff and the commit.
    assert_eq!(kept, TEST_FILE.replace("mirrored", "mirrored_on_worker"));
    assert!(!built_here, "build outputs stay on the worker");
}
