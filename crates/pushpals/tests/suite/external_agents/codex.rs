//! Codex CLI: the Responses gateway and a resumed thread.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};

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
    agent_task(
        &agent_config("openai_responses", &model.openai_base(), "codex", &codex),
        &["Add bar", "Add bar", "codex"],
        move |server, id| {
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
            let events = server.events(id);
            let started = first_event(&events, "agent_started");
            assert_version(started, "0.169.0");
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
            let session = finished["payload"]["session"].as_str().unwrap().to_owned();

            reject_and_continue(server, id, "also add baz");
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(
                worktree_file(&view, "src/lib.rs"),
                "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
            );
            let resumed = server
                .events(id)
                .into_iter()
                .filter(|e| e["kind"] == "agent_started")
                .nth(1)
                .unwrap();
            assert_eq!(resumed["payload"]["resumed_session"], session.as_str());
        },
    )
    .await;
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
