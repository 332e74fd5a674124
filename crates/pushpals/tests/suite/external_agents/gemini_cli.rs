//! Gemini CLI over the Agent Client Protocol: each tool call judged.

use super::*;
use crate::suite::support::{start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_edits_through_the_gemini_gateway() {
    let gemini = installed_agent("gemini-cli", "gemini");
    let port = host_listener();
    let model = ScriptedModel::start(vec![
        Reply::text_and_tools(
            "Adding bar.",
            &[("run_shell_command", &edit_and_probe("command", port))],
        ),
        Reply::text("Added bar next to foo."),
    ])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &agent_config("gemini", &model.anthropic_base(), "gemini-cli", &gemini),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add bar",
            "--with",
            "gemini-cli",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        // In its ACP mode every tool call asks Push Pals: the command has a
        // `curl`, which policy asks about, so the task waits for the person.
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "waiting",
            "{}",
            view["task"]["reason"]
        );
        assert!(view["approvals"][0].to_string().contains("curl"), "{view}");
        approve_command(&server, &id);
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\n"
        );
        let events = server.events(&id);
        let started = events
            .iter()
            .find(|e| e["kind"] == "agent_started")
            .unwrap();
        assert_eq!(started["payload"]["session_protocol"], "acp", "{started}");
        assert!(
            events.iter().any(|e| e["kind"] == "policy_decision"
                && e["payload"]["command"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("src/lib.rs")),
            "the command was judged by policy"
        );
        assert!(
            started["payload"]["version"]
                .as_str()
                .unwrap()
                .contains("0.61.0"),
            "{started}"
        );
        let messages: Vec<&str> = events
            .iter()
            .filter(|e| e["kind"] == "agent_step" && e["payload"]["step"] == "message")
            .filter_map(|e| e["payload"]["text"].as_str())
            .collect();
        assert_eq!(
            messages,
            ["Adding bar.", "Added bar next to foo."],
            "streamed pieces make one message each"
        );
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["ok"], true);
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        assert_eq!(view["task"]["usage"]["model_calls"], 2);
    })
    .await
    .unwrap();
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let shown = requests[1].body.to_string();
    assert!(
        shown.contains("GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:4141"),
        "{shown}"
    );
    assert!(!shown.contains(KEY), "the real key reached the agent");
    assert!(
        shown.contains("no-host") && !shown.contains("HOST-REACHED"),
        "{shown}"
    );
    assert_real_key_and_model(&requests, "x-goog-api-key", KEY);
}
