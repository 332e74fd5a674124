//! OpenHands over the Agent Client Protocol: it announces its actions and
//! asks once to confirm them; each is judged (a shell command by policy, a
//! file write by the worktree fence).

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::json;

/// Where the refused write would have gone: outside every worktree (and
/// read-only in the sandbox, so an escape would show on the host).
const OUTSIDE: &str = "/usr/local/pushpals-openhands-escape.txt";

/// One OpenHands tool call's arguments: `fields` and the risk it predicts.
fn arguments(mut fields: Value) -> String {
    fields["security_risk"] = json!("LOW");
    fields["summary"] = json!("step");
    fields.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openhands_edits_through_the_gateway_with_each_action_judged() {
    let openhands = installed_agent("openhands", "openhands");
    let _ = std::fs::remove_file(OUTSIDE);
    let port = host_listener();
    let probe: Value = serde_json::from_str(&edit_and_probe("command", port)).unwrap();
    let model = ScriptedModel::start(vec![
        Reply::text_and_tools(
            "Adding bar.",
            &[(
                "terminal",
                &arguments(json!({ "command": probe["command"], "is_input": false })),
            )],
        ),
        Reply::tool(
            "file_editor",
            &arguments(json!({ "command": "create", "path": OUTSIDE, "file_text": "escaped\n" })),
        ),
        Reply::tool("finish", r#"{"message":"Added bar next to foo."}"#),
        Reply::tool("finish", r#"{"message":"The empty case needs nothing."}"#),
    ])
    .await;
    agent_task(
        &agent_config("openai", &model.openai_base(), "openhands", &openhands),
        &[
            "Add bar",
            "Add a public function bar next to foo in src/lib.rs",
            "openhands",
        ],
        move |server, id| {
            // Its confirmation is answered by the judge: the command has a
            // `curl`, which policy asks about, so the task waits for the person.
            let view = settled_as(server, id, "waiting");
            assert!(view["approvals"][0].to_string().contains("curl"), "{view}");
            approve_command(server, id);
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
            let diff = server.json(&["diff", id]);
            assert_eq!(diff["files"].as_array().unwrap().len(), 1, "{diff}");
            let events = server.events(id);
            let started = first_event(&events, "agent_started");
            assert_eq!(started["payload"]["session_protocol"], "acp", "{started}");
            assert_version(started, "1.16.0");
            let refused = events
                .iter()
                .find(|e| e["kind"] == "policy_decision" && e["payload"]["tool"] == "Write")
                .expect("the write outside the worktree was judged");
            assert_eq!(refused["payload"]["decision"], "deny", "{refused}");
            let steps: Vec<&Value> = events
                .iter()
                .filter(|e| e["kind"] == "agent_step")
                .map(|e| &e["payload"])
                .collect();
            assert!(
                steps.iter().any(|s| s["step"] == "tool_call"
                    && s["tool"] == "execute"
                    && s["command"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("src/lib.rs")),
                "{steps:?}"
            );
            assert!(
                steps.iter().any(|s| s["step"] == "tool_result"
                    && s["is_error"] == true
                    && s["output"].as_str().unwrap_or_default().contains("reject")),
                "the refusal reached the agent: {steps:?}"
            );
            let finished = first_event(&events, "agent_finished");
            assert_eq!(finished["payload"]["ok"], true);
            assert!(
                finished["payload"]["summary"]
                    .as_str()
                    .unwrap()
                    .contains("Added bar next to foo."),
                "{finished}"
            );
            assert_eq!(view["task"]["usage"]["model_calls"], 3);
            let first_session = finished["payload"]["session"].as_str().unwrap().to_owned();
            // It does not exit when its session ends: stopped, as a normal end.
            let stopped = steps
                .iter()
                .find(|s| s["step"] == "stopped")
                .expect("Push Pals stopped it after its session");
            assert!(
                stopped["reason"]
                    .as_str()
                    .unwrap()
                    .contains("end of its session"),
                "{stopped}"
            );

            // Feedback goes on in its own session, loaded through ACP.
            reject_and_continue(server, id, "also handle the empty case");
            let events = server.events(id);
            let second = events
                .iter()
                .filter(|e| e["kind"] == "agent_finished")
                .nth(1)
                .unwrap();
            assert_eq!(second["payload"]["ok"], true, "{second}");
            assert_eq!(second["payload"]["session"], first_session.as_str());
        },
    )
    .await;
    assert!(
        !std::path::Path::new(OUTSIDE).exists(),
        "the refused write did not happen"
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 4);
    let resumed = requests[3].body["messages"].to_string();
    assert!(
        resumed.contains("Add a public function bar") && resumed.contains("Added bar next to foo"),
        "the loaded session carries the first run: {resumed}"
    );
    assert_eq!(
        requests[3].body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user")
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter_map(|part| part["text"].as_str())
            .filter(|text| text.contains("also handle the empty case"))
            .count(),
        1,
        "the feedback is sent once, as the next turn"
    );
    let shown = requests[1].body.to_string();
    assert!(
        shown.contains("LLM_BASE_URL=http://127.0.0.1:4141/v1"),
        "{shown}"
    );
    assert!(!shown.contains(KEY), "the real key reached the agent");
    assert!(
        shown.contains("no-host") && !shown.contains("HOST-REACHED"),
        "{shown}"
    );
    assert_real_key_and_model(&requests, "authorization", &format!("Bearer {KEY}"));
}
