//! Claude Code: its hook judged by policy, approvals, budgets, feedback, translation.

use super::*;
use pushpals_test_support::{Reply, ScriptedModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_edits_under_push_pals_policy_and_approvals() {
    let claude = installed_agent("claude-code", "claude");
    let model = ScriptedModel::start(vec![
        Reply::tool("Bash", r#"{"command":"git push origin main","description":"push"}"#),
        Reply::tool("Bash", r#"{"command":"frobnicate --all","description":"an unknown tool"}"#),
        Reply::tool(
            "Bash",
            r#"{"command":"printf 'pub fn bar() {}\\n' >> src/lib.rs && env","description":"add bar"}"#,
        ),
        Reply::text("Added bar next to foo."),
        // The follow-up run, after the person's feedback.
        Reply::tool(
            "Bash",
            r#"{"command":"printf 'pub fn baz() {}\\n' >> src/lib.rs","description":"add baz"}"#,
        ),
        Reply::text("Added baz too."),
    ])
    .await;
    agent_task(
        &agent_config("anthropic", &model.anthropic_base(), "claude-code", &claude),
        &[
            "Add bar",
            "Add a public function bar next to foo in src/lib.rs",
            "claude-code",
        ],
        move |server, id| {
            // The unknown command asks: the task waits for the person.
            let view = settled_as(server, id, "waiting");
            let pending = &view["approvals"][0];
            assert_eq!(pending["action"], "command", "{view}");
            assert!(pending.to_string().contains("frobnicate"), "{view}");
            let denied = server
                .cli()
                .args([
                    "deny",
                    id,
                    "--action",
                    "command",
                    "--reason",
                    "not that one",
                ])
                .output()
                .unwrap();
            assert!(
                denied.status.success(),
                "{}",
                String::from_utf8_lossy(&denied.stderr)
            );
            for _ in 0..200 {
                if server.json(&["status", id])["task"]["state"] != "waiting" {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let view = settled_as(server, id, "awaiting_approval");
            let diff = server.json(&["diff", id]);
            let files = diff["files"].as_array().unwrap();
            assert_eq!(files.len(), 1, "{diff}");
            assert_eq!(files[0]["path"], "src/lib.rs");
            assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);

            let events = server.events(id);
            let kinds = kinds(&events);
            for kind in [
                "agent_started",
                "agent_step",
                "model_call",
                "policy_decision",
                "agent_finished",
            ] {
                assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
            }
            let started = first_event(&events, "agent_started");
            assert_version(started, "2.1");
            let decisions: Vec<&Value> = events
                .iter()
                .filter(|e| e["kind"] == "policy_decision")
                .map(|e| &e["payload"])
                .collect();
            assert!(
                decisions
                    .iter()
                    .any(|d| d["command"] == "git push origin main" && d["decision"] == "deny"),
                "{decisions:?}"
            );
            let finished = first_event(&events, "agent_finished");
            assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
            let session = finished["payload"]["session"].as_str().unwrap().to_owned();

            // Feedback: the commit is rejected and the task continued; the
            // agent resumes its own session with the feedback as its prompt.
            reject_and_continue(server, id, "also add baz");
            let view = settled_as(server, id, "awaiting_approval");
            assert_eq!(
                worktree_file(&view, "src/lib.rs"),
                "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
            );
            let events = server.events(id);
            let resumed = events
                .iter()
                .filter(|e| e["kind"] == "agent_started")
                .nth(1)
                .unwrap();
            assert_eq!(resumed["payload"]["resumed_session"], session.as_str());
        },
    )
    .await;
    // What the model was shown: the refusals with their reasons, and the
    // agent's environment without the real key.
    let requests = model.requests();
    let seen: String = requests.iter().map(|r| r.body.to_string()).collect();
    // The follow-up carried the first run's conversation and the feedback.
    let follow_up = requests[requests.len() - 2].body.to_string();
    assert!(follow_up.contains("Added bar next to foo.") && follow_up.contains("also add baz"));
    assert!(
        seen.contains("not that one"),
        "the person's reason reached the agent"
    );
    assert!(
        seen.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:4141"),
        "env ran in the sandbox"
    );
    assert!(!seen.contains(KEY), "the real key reached the agent");
    assert_real_key_and_model(&requests, "x-api-key", KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_stops_claude_code_with_the_reason() {
    let claude = installed_agent("claude-code", "claude");
    let model = ScriptedModel::start(vec![
        Reply::tool("Bash", r#"{"command":"ls","description":"look"}"#),
        Reply::text("never sent: the budget stops the second call"),
    ])
    .await;
    agent_task(
        &format!(
            "[models.strong]\nprotocol = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             [agent.budget]\nmax_steps = 1\n\
             [agents.claude-code]\nprogram = \"{}\"\n",
            model.anthropic_base(),
            claude.display()
        ),
        &["Look", "Look around", "claude-code"],
        move |server, id| {
            let view = wait_settled(server, id);
            assert_eq!(view["task"]["state"], "failed", "{view}");
            let reason = view["task"]["reason"].as_str().unwrap();
            assert!(
                reason.contains("budget") && reason.contains("1 of 1 model calls"),
                "{reason}"
            );
            assert_eq!(view["task"]["usage"]["model_calls"], 1);
        },
    )
    .await;
    assert_eq!(
        model.requests().len(),
        1,
        "the refused call never reached the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_works_with_an_openai_compatible_model_through_translation() {
    let claude = installed_agent("claude-code", "claude");
    let model = ScriptedModel::start(vec![
        Reply::tool(
            "Bash",
            r#"{"command":"printf 'pub fn bar() {}\\n' >> src/lib.rs","description":"add bar"}"#,
        ),
        Reply::text("Added bar next to foo."),
    ])
    .await;
    agent_task(
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"local-coder\"\n\
             [agents.claude-code]\nprogram = \"{}\"\n",
            model.openai_base(),
            claude.display()
        ),
        &["Add bar", "Add bar", "claude-code"],
        move |server, id| {
        let view = wait_settled(server, id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );
        assert_eq!(worktree_file(&view, "src/lib.rs"), WITH_BAR);
        let events = server.events(id);
        let started = first_event(&events, "agent_started");
        assert_eq!(started["payload"]["translated_to"], "openai");
        let calls: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "model_call")
            .map(|e| &e["payload"])
            .collect();
        assert_eq!(calls.len(), 2);
        assert!(
            calls.iter().all(|c| c["translated_to"] == "openai"),
            "{calls:?}"
        );
        let finished = first_event(&events, "agent_finished");
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        let metrics = metrics(server);
        let series = "pushpals_gateway_first_byte_seconds_count{model=\"strong\",protocol=\"anthropic\",translated_to=\"openai\"} 2\n";
        assert!(metrics.contains(series), "{series} in\n{metrics}");
        },
    )
    .await;
    for request in model.requests() {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.body["model"], "local-coder");
    }
}
