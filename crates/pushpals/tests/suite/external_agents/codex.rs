//! Codex CLI: the Responses gateway and a resumed thread.

use super::*;
use crate::suite::support::{start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_edits_through_the_responses_gateway_and_resumes_its_session() {
    let codex = installed_agent("codex", "codex");
    let port = host_listener();
    let model = ScriptedModel::start(vec![
        Reply::text_and_tools(
            "Adding bar.",
            &[("exec_command", &edit_and_probe("cmd", port))],
        ),
        Reply::text("Added bar next to foo."),
        // The follow-up run, resumed after the person's feedback.
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
        &agent_config("openai_responses", &model.openai_base(), "codex", &codex),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&["task", "Add bar", "--agent", "Add bar", "--with", "codex"]);
        let id = created["id"].as_str().unwrap().to_owned();
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
        assert!(
            started["payload"]["version"]
                .as_str()
                .unwrap()
                .contains("0.169.0"),
            "{started}"
        );
        assert!(events.iter().any(|e| {
            e["kind"] == "agent_step"
                && e["payload"]["step"] == "tool_call"
                && e["payload"]["command"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("src/lib.rs")
        }));
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        let session = finished["payload"]["session"].as_str().unwrap().to_owned();

        reject_and_continue(&server, &id, "also add baz");
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
        );
        let resumed = server
            .events(&id)
            .into_iter()
            .filter(|e| e["kind"] == "agent_started")
            .nth(1)
            .unwrap();
        assert_eq!(resumed["payload"]["resumed_session"], session.as_str());
    })
    .await
    .unwrap();
    let requests = model.requests();
    assert!(requests.iter().all(|r| r.path == "/v1/responses"));
    let shown: String = requests.iter().map(|r| r.body.to_string()).collect();
    assert!(shown.contains("127.0.0.1:4141"), "env ran in the sandbox");
    assert!(!shown.contains(KEY), "the real key reached the agent");
    assert!(
        shown.contains("no-host") && !shown.contains("HOST-REACHED"),
        "{shown}"
    );
    let follow_up = requests[requests.len() - 2].body.to_string();
    assert!(follow_up.contains("Added bar next to foo.") && follow_up.contains("also add baz"));
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}
