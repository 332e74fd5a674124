//! The agent through the real server and command line: an agent task from
//! `pushpals task --agent`, its cost in `status`, and `pushpals chat`.

use super::support::start_server_with_env;
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

const KEY: &str = "sk-test-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_task_from_the_command_line_with_its_cost_and_chat() {
    let model = ScriptedModel::start(vec![
        Reply::tool(
            "write_file",
            r#"{"path":"src/bar.rs","content":"pub fn bar() {}\n"}"#,
        ),
        Reply::tool("finish", r#"{"summary":"Added src/bar.rs."}"#),
    ])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    super::support::write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\ninput_price_per_mtok = 3.0\n\
             output_price_per_mtok = 15.0\n",
            model.openai_base()
        ),
    );
    let repo_path = repo.path.clone();
    let data_path = data.path().to_path_buf();
    let transcript = tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add a bar module",
            "--scope",
            "src/",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["agent"]["scope"][0], "src/");
        let view = server.wait_for_state(&id, "awaiting_approval");
        assert_eq!(view["task"]["usage"]["model_calls"], 2);
        assert!(view["task"]["usage"]["cost_micros"].as_u64().unwrap() > 0);

        let table = server.cli().arg("status").output().unwrap();
        let table = String::from_utf8(table.stdout).unwrap();
        assert!(table.contains("COST") && table.contains('$'), "{table}");

        let chat = server.cli().args(["chat", "status"]).output().unwrap();
        let chat = String::from_utf8(chat.stdout).unwrap();
        assert!(
            chat.contains("#1") && chat.contains("awaiting_approval"),
            "{chat}"
        );
        assert!(chat.contains("2 model calls"), "{chat}");

        let approved = server.json(&["chat", "approve", "1"]);
        assert_eq!(approved["intent"], "approve");
        server.wait_for_state(&id, "committed");

        let refused = server
            .cli()
            .args(["chat", "add", "a", "feature"])
            .output()
            .unwrap();
        assert!(!refused.status.success(), "no planner model is configured");
        let stderr = String::from_utf8(refused.stderr).unwrap();
        assert!(stderr.contains("[models.fast]"), "{stderr}");

        let export = server.cli().args(["audit", "export"]).output().unwrap();
        let log = server.log.lock().unwrap().clone();
        (String::from_utf8(export.stdout).unwrap(), log)
    })
    .await
    .unwrap();
    let (export, log) = transcript;
    // The key went to the model, and nowhere else.
    let sent = &model.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(!export.contains(KEY), "the key is not in the audit log");
    assert!(!log.contains(KEY), "the key is not in the server's log");
    assert!(export.contains("\"model_call\""));
}
