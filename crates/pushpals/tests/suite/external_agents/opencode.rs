//! opencode: its judge plugin.

use super::*;
use crate::suite::support::{start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_edits_through_the_gateway() {
    let opencode = installed_agent("opencode", "opencode");
    let port = host_listener();
    let model = ScriptedModel::start(vec![
        Reply::tool("bash", &edit_and_probe("command", port)),
        Reply::text("Added bar next to foo."),
    ])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &agent_config("openai", &model.openai_base(), "opencode", &opencode),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task", "Add bar", "--agent", "Add bar", "--with", "opencode",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        // Its judge plugin asks before every tool call: the command has a
        // `curl`, which policy asks about, so the task waits for the person.
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "waiting",
            "{}",
            view["task"]["reason"]
        );
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
        assert!(
            started["payload"]["version"]
                .as_str()
                .unwrap()
                .contains("1.18.33"),
            "{started}"
        );
        let inits = events
            .iter()
            .filter(|e| e["kind"] == "agent_step" && e["payload"]["step"] == "init")
            .count();
        assert_eq!(inits, 1, "one session, announced once");
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        assert!(
            finished["payload"]["session"]
                .as_str()
                .unwrap()
                .starts_with("ses_")
        );
    })
    .await
    .unwrap();
    let requests = model.requests();
    assert_eq!(
        requests.len(),
        2,
        "no title call: the title comes from the prompt"
    );
    let shown = requests[1].body.to_string();
    assert!(shown.contains("127.0.0.1:4141"), "{shown}");
    assert!(!shown.contains(KEY), "the real key reached the agent");
    assert!(
        shown.contains("no-host") && !shown.contains("HOST-REACHED"),
        "{shown}"
    );
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}
