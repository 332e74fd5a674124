//! Gemini CLI over the Agent Client Protocol: each tool call judged.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};

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
    agent_task(
        &agent_config("gemini", &model.anthropic_base(), "gemini-cli", &gemini),
        &["Add bar", "Add bar", "gemini-cli"],
        move |server, id| {
            // In its ACP mode every tool call asks Push Pals: the command has a
            // `curl`, which policy asks about, so the task waits for the person.
            let view = settled_as(server, id, "waiting");
            assert!(view["approvals"][0].to_string().contains("curl"), "{view}");
            approve_command(server, id);
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
            let events = server.events(id);
            let started = first_event(&events, "agent_started");
            assert_eq!(started["payload"]["session_protocol"], "acp", "{started}");
            assert!(
                events.iter().any(|e| e["kind"] == "policy_decision"
                    && e["payload"]["command"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("src/lib.rs")),
                "the command was judged by policy"
            );
            assert_version(started, "0.61.0");
            assert!(
                events.iter().any(|e| e["kind"] == "agent_step"
                    && e["payload"]["step"] == "tool_call"
                    && e["payload"].to_string().contains("src/lib.rs")),
                "the shell call it asked about is a recorded step"
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
            let finished = first_event(&events, "agent_finished");
            assert_eq!(finished["payload"]["ok"], true);
            assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
            assert_eq!(view["task"]["usage"]["model_calls"], 2);
        },
    )
    .await;
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
