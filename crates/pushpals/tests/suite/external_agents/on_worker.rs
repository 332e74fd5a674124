//! An external agent on a real worker host: the worker finds Codex on its
//! own `PATH` and offers it, the task goes there, the version is asked in
//! the worker's sandbox, the agent reaches the model only through the
//! server's gateway over the worker's connection, and its edit comes back
//! as the task's diff. A follow-up run starts a new session with the whole
//! task (the first session stayed on the worker).

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
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[workers]\nlocal = false\n[models.strong]\nprotocol = \"openai_responses\"\n\
             base_url = \"{}\"\nmodel = \"m-real\"\napi_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n",
            model.openai_base()
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let (repo_path, data_path, home_path) = (
        repo.path.clone(),
        data.path().to_path_buf(),
        home.path().to_path_buf(),
    );
    let path = format!(
        "{}:{}",
        codex.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
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
        let created = server.json(&["task", "Add bar", "--agent", "Add bar", "--with", "codex"]);
        let id = created["id"].as_str().unwrap().to_owned();

        let view = settled_as(&server, &id, "awaiting_approval");
        assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
        let events = server.events(&id);
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
        reject_and_continue(&server, &id, "also add baz");
        let view = settled_as(&server, &id, "awaiting_approval");
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
        );
        let second = server
            .events(&id)
            .into_iter()
            .filter(|e| e["kind"] == "agent_started")
            .nth(1)
            .unwrap();
        assert!(second["payload"]["resumed_session"].is_null(), "{second}");

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
