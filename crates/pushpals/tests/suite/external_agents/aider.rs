//! Aider: search/replace edits from the gateway.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_applies_a_search_replace_edit_from_the_gateway() {
    let aider = installed_agent("aider", "aider");
    let model = ScriptedModel::start(vec![Reply::text(
        "I'll add bar.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\npub fn foo() {}\n=======\npub fn foo() {}\npub fn bar() {}\n>>>>>>> REPLACE\n```\n",
    )])
    .await;
    agent_task(
        &agent_config("openai", &model.openai_base(), "aider", &aider),
        &[
            "Add bar",
            "Add a public function bar next to foo in src/lib.rs",
            "aider",
        ],
        move |server, id| {
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
            let diff = server.json(&["diff", id]);
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
            let events = server.events(id);
            let started = first_event(&events, "agent_started");
            assert_version(started, "0.86.2");
            assert!(events.iter().any(|e| e["kind"] == "agent_step"
                && e["payload"]["step"] == "tool_call"
                && e["payload"]["file"] == "src/lib.rs"));
            let export = server.cli().args(["audit", "export"]).output().unwrap();
            assert!(!String::from_utf8_lossy(&export.stdout).contains(KEY));
        },
    )
    .await;
    let requests = model.requests();
    assert!(!requests.is_empty());
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}
