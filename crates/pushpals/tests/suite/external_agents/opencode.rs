//! opencode: its judge plugin.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_edits_through_the_gateway() {
    let opencode = installed_agent("opencode", "opencode");
    let port = host_listener();
    let model = ScriptedModel::start(vec![
        Reply::tool("bash", &edit_and_probe("command", port)),
        Reply::text("Added bar next to foo."),
    ])
    .await;
    agent_task(
        &agent_config("openai", &model.openai_base(), "opencode", &opencode),
        &["Add bar", "Add bar", "opencode"],
        move |server, id| {
            // Its judge plugin asks before every tool call: the command has a
            // `curl`, which policy asks about, so the task waits for the person.
            settled_as(server, id, "waiting");
            approve_command(server, id);
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
            let events = server.events(id);
            let started = first_event(&events, "agent_started");
            assert_version(started, "1.18.33");
            let inits = events
                .iter()
                .filter(|e| e["kind"] == "agent_step" && e["payload"]["step"] == "init")
                .count();
            assert_eq!(inits, 1, "one session, announced once");
            let finished = first_event(&events, "agent_finished");
            assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
            assert!(
                finished["payload"]["session"]
                    .as_str()
                    .unwrap()
                    .starts_with("ses_")
            );
        },
    )
    .await;
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
