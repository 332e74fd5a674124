//! mini-swe-agent: steps from its trajectory.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_swe_agent_edits_through_the_gateway_and_its_trajectory_becomes_steps() {
    let mini = installed_agent("mini-swe-agent", "mini");
    let port = host_listener();
    let model = ScriptedModel::start(vec![
        Reply::text_and_tools("Adding bar.", &[("bash", &edit_and_probe("command", port))]),
        Reply::tool(
            "bash",
            r#"{"command":"echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}"#,
        ),
    ])
    .await;
    agent_task(
        &agent_config("openai", &model.openai_base(), "mini-swe-agent", &mini),
        &[
            "Add bar",
            "Add a public function bar next to foo in src/lib.rs",
            "mini-swe-agent",
        ],
        move |server, id| {
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
            let diff = server.json(&["diff", id]);
            assert_eq!(diff["files"].as_array().unwrap().len(), 1, "{diff}");
            let events = server.events(id);
            let started = first_event(&events, "agent_started");
            assert_version(started, "2.4.6");
            assert!(events.iter().any(|e| {
                e["kind"] == "agent_step"
                    && e["payload"]["step"] == "tool_call"
                    && e["payload"]["command"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("src/lib.rs")
            }));
            let finished = first_event(&events, "agent_finished");
            assert_eq!(finished["payload"]["ok"], true, "{finished}");
            assert_eq!(view["task"]["usage"]["model_calls"], 2);
        },
    )
    .await;
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let shown = requests[1].body.to_string();
    assert!(
        shown.contains("OPENAI_API_BASE=http://127.0.0.1:4141/v1"),
        "{shown}"
    );
    assert!(!shown.contains(KEY), "the real key reached the agent");
    assert!(
        shown.contains("no-host") && !shown.contains("HOST-REACHED"),
        "{shown}"
    );
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}
