//! Aider: search/replace edits from the gateway.

use super::*;
use crate::suite::support::{start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_applies_a_search_replace_edit_from_the_gateway() {
    let aider = installed_agent("aider", "aider");
    let model = ScriptedModel::start(vec![Reply::text(
        "I'll add bar.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\npub fn foo() {}\n=======\npub fn foo() {}\npub fn bar() {}\n>>>>>>> REPLACE\n```\n",
    )])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &agent_config("openai", &model.openai_base(), "aider", &aider),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add a public function bar next to foo in src/lib.rs",
            "--with",
            "aider",
        ]);
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
        let diff = server.json(&["diff", &id]);
        let files: Vec<&str> = diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            files,
            ["src/lib.rs"],
            "no history or cache files in the worktree"
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
                .contains("0.86.2"),
            "{started}"
        );
        assert!(events.iter().any(|e| e["kind"] == "agent_step"
            && e["payload"]["step"] == "tool_call"
            && e["payload"]["file"] == "src/lib.rs"));
        let export = server.cli().args(["audit", "export"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&export.stdout).contains(KEY));
    })
    .await
    .unwrap();
    let requests = model.requests();
    assert!(!requests.is_empty());
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}
