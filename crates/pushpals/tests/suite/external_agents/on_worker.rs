//! An external agent on a real worker host: the worker finds Codex on its
//! own `PATH` and offers it, the task goes there, the version is asked in
//! the worker's sandbox, the agent reaches the model only through the
//! server's gateway over the worker's connection, and its edit comes back
//! as the task's diff. A follow-up run starts a new session with the whole
//! task (the first session stayed on the worker). Claude Code's hook on a
//! worker is judged by the server's policy like one here.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_runs_on_a_worker_host_through_the_servers_gateway() {
    let codex = installed_agent("codex", "codex");
    let port = host_listener();
    let model = ScriptedModel::start(vec![
        Reply::text_and_tools(
            "Adding bar.",
            &[("exec_command", &edit_and_probe("cmd", port))],
        ),
        Reply::text("Added bar next to foo."),
        Reply::tool(
            "exec_command",
            r#"{"cmd":"printf 'pub fn baz() {}\\n' >> src/lib.rs"}"#,
        ),
        Reply::text("Added baz too."),
    ])
    .await;
    let model_config = format!(
        "[models.strong]\nprotocol = \"openai_responses\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
         api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n",
        model.openai_base()
    );
    on_a_worker(&model_config, &codex, "codex", |server, id| {
        let view = settled_as(server, id, "awaiting_approval");
        assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
        let events = server.events(id);
        let placed = first_event(&events, "task_placed");
        assert_eq!(placed["payload"]["worker"], "agents-1");
        assert!(
            placed["payload"]["needs"]
                .as_array()
                .unwrap()
                .contains(&"agent:codex".into()),
            "{placed}"
        );
        let started = first_event(&events, "agent_started");
        assert_eq!(started["payload"]["worker"], "agents-1");
        assert_version(started, "0.169.0");
        // The worker offers what it found on its PATH.
        let listed = server.json(&["workers"]);
        let agents = &listed["workers"][0]["agents"];
        assert!(
            agents.as_array().unwrap().contains(&"codex".into()),
            "{listed}"
        );
        // The worker's program, not one of the server's.
        let program = started["payload"]["program"].as_str().unwrap();
        assert!(program.contains("codex"), "{program}");
        assert!(events.iter().any(|e| {
            e["kind"] == "agent_step"
                && e["payload"]["step"] == "tool_call"
                && e["payload"]["command"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("src/lib.rs")
        }));
        let finished = first_event(&events, "agent_finished");
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");

        // Its session stayed on the worker: the next run starts anew, told
        // the whole task and the feedback.
        reject_and_continue(server, id, "also add baz");
        let view = settled_as(server, id, "awaiting_approval");
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
        );
        let second = server
            .events(id)
            .into_iter()
            .filter(|e| e["kind"] == "agent_started")
            .nth(1)
            .unwrap();
        assert!(second["payload"]["resumed_session"].is_null(), "{second}");
    })
    .await;

    let requests = model.requests();
    assert!(requests.iter().all(|r| r.path == "/v1/responses"));
    let shown: String = requests.iter().map(|r| r.body.to_string()).collect();
    // `env` ran in the worker's sandbox: the gateway's address there, no
    // real key, and the host's own listener out of reach.
    assert!(shown.contains("127.0.0.1:4141"), "env ran in the sandbox");
    assert!(!shown.contains(KEY), "the real key reached the agent");
    assert!(
        shown.contains("no-host") && !shown.contains("HOST-REACHED"),
        "{shown}"
    );
    let follow_up = requests[requests.len() - 2].body.to_string();
    assert!(
        follow_up.contains("Add bar") && follow_up.contains("also add baz"),
        "{follow_up}"
    );
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_codes_hook_on_a_worker_host_is_judged_by_the_servers_policy() {
    let claude = installed_agent("claude-code", "claude");
    let write = serde_json::json!({
        "file_path": "/workspace/repo-repo/src/extra.rs",
        "content": "pub fn extra() {}\n",
    });
    let model = ScriptedModel::start(vec![
        Reply::tool(
            "Bash",
            r#"{"command":"git push origin main","description":"push"}"#,
        ),
        Reply::tool("Write", &write.to_string()),
        Reply::tool(
            "Write",
            r#"{"file_path":"/etc/pushpals-escape","content":"x"}"#,
        ),
        Reply::tool(
            "Bash",
            r#"{"command":"printf 'pub fn bar() {}\\n' >> src/lib.rs","description":"add bar"}"#,
        ),
        Reply::text("Added bar next to foo."),
    ])
    .await;
    let model_config = format!(
        "[models.strong]\nprotocol = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
         api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n",
        model.anthropic_base()
    );
    on_a_worker(&model_config, &claude, "claude-code", |server, id| {
        let view = settled_as(server, id, "awaiting_approval");
        assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
        // A write where the clone appears in the worker's sandbox is a
        // write in the worktree.
        assert_eq!(worktree_file(&view, "src/extra.rs"), "pub fn extra() {}\n");
        let events = server.events(id);
        let started = first_event(&events, "agent_started");
        assert_eq!(started["payload"]["worker"], "agents-1");
        assert_eq!(started["payload"]["judged_by_hook"], true, "{started}");
        let decisions: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "policy_decision")
            .map(|e| &e["payload"])
            .collect();
        assert!(
            decisions
                .iter()
                .any(|d| d["command"] == "git push origin main" && d["decision"] == "deny"),
            "{decisions:?}"
        );
        assert!(
            decisions
                .iter()
                .any(|d| d.to_string().contains("/etc/pushpals-escape") && d["decision"] == "deny"),
            "{decisions:?}"
        );
        let finished = first_event(&events, "agent_finished");
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
    })
    .await;
    assert!(!std::path::Path::new("/etc/pushpals-escape").exists());
    assert_real_key_and_model(&model.requests(), "x-api-key", KEY);
}

/// Runs `body` on a server (not taking tasks itself; `models` its model
/// settings, the key in `$PUSHPALS_TEST_MODEL_KEY`) once a real worker
/// host, with `program` on its `PATH`, has the task "Add bar" of the agent
/// `agent`; then checks the worker kept none of the run's files and the
/// audit chain holds.
async fn on_a_worker<F>(models: &str, program: &std::path::Path, agent: &str, body: F)
where
    F: FnOnce(&Server, &str) + Send + 'static,
{
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(data.path(), &format!("[workers]\nlocal = false\n{models}"));
    let home = tempfile::tempdir().unwrap();
    let (repo_path, data_path, home_path) = (
        repo.path.clone(),
        data.path().to_path_buf(),
        home.path().to_path_buf(),
    );
    let path = format!(
        "{}:{}",
        program.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let agent = agent.to_owned();
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "worker",
            "token",
            "--name",
            "agents-1",
            "--labels",
            "cargo,node,python",
        ]);
        let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
        let mut host = Command::new(super::super::support::BIN);
        host.args(["worker", "--server", &server.url, "--token", &enrolment])
            .env("PUSHPALS_DATA_DIR", &home_path)
            .env("XDG_CONFIG_HOME", home_path.join("config"))
            .env("PATH", &path)
            .env_remove("PUSHPALS_TOKEN")
            .env_remove("PUSHPALS_TEST_MODEL_KEY")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut host = host.spawn().unwrap();
        let created = server.json(&["task", "Add bar", "--agent", "Add bar", "--with", &agent]);
        body(&server, created["id"].as_str().unwrap());

        // The run's clone and the agent's home go once the run is over.
        let runs = home_path.join("worker/runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the run's files stayed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = host.kill();
        let _ = host.wait();
        let verified = server.cli().args(["audit", "verify"]).output().unwrap();
        assert!(verified.status.success(), "{verified:?}");
    })
    .await
    .unwrap();
}
