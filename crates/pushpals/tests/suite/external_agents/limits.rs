//! What bounds every agent, each of them run for real: a spent budget is
//! refused at the gateway before anything reaches the provider, and cancel
//! ends all of the agent's processes.

use super::*;
use crate::suite::support::{start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

/// The agents (name, program) and the model each speaks to.
const AGENTS: [(&str, &str, &str); 7] = [
    ("claude-code", "claude", "anthropic"),
    ("codex", "codex", "responses"),
    ("gemini-cli", "gemini", "gemini"),
    ("opencode", "opencode", "openai"),
    ("aider", "aider", "openai"),
    ("mini-swe-agent", "mini", "openai"),
    ("openhands", "openhands", "openai"),
];

/// A configuration with a model per protocol at `model`, every agent, and
/// `extra`.
fn config(model: &ScriptedModel, extra: &str) -> String {
    let root = model.anthropic_base();
    let mut config = String::from(extra);
    for (name, protocol, base) in [
        ("anthropic", "anthropic", root.clone()),
        ("openai", "openai", format!("{root}/v1")),
        ("responses", "openai_responses", format!("{root}/v1")),
        ("gemini", "gemini", root.clone()),
    ] {
        config.push_str(&format!(
            "[models.{name}]\nprotocol = \"{protocol}\"\nbase_url = \"{base}\"\nmodel = \"m\"\n"
        ));
    }
    for (name, program, model_name) in AGENTS {
        config.push_str(&format!(
            "[agents.{name}]\nprogram = \"{}\"\nmodel = \"{model_name}\"\n",
            installed_agent(name, program).display()
        ));
    }
    config
}

/// Processes that carry the task's id in their environment: its agent and
/// everything the agent started.
fn task_processes(id: &str) -> usize {
    let marker = format!("PUSHPALS_TASK={id}\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read(entry.path().join("environ"))
                .is_ok_and(|env| env.windows(marker.len()).any(|w| w == marker))
        })
        .count()
}

/// Waits until the task's run `runs` has ended (its `runs`-th move to a
/// state where a run ends).
fn settle_after(server: &Server, id: &str, runs: usize) -> Value {
    let ended = ["awaiting_approval", "no_changes", "failed", "cancelled"];
    for _ in 0..1200 {
        let count = server
            .events(id)
            .iter()
            .filter(|e| {
                e["kind"] == "state_changed"
                    && ended.contains(&e["payload"]["to"].as_str().unwrap_or_default())
            })
            .count();
        if count >= runs {
            return server.json(&["status", id]);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = server.events(id);
    panic!(
        "task {id}'s run {runs} never ended: {:#?}",
        &events[events.len().saturating_sub(6)..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_is_stopped_by_its_budget_at_the_gateway() {
    let model = std::sync::Arc::new(
        ScriptedModel::start((0..40).map(|_| Reply::text("done")).collect()).await,
    );
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &config(&model, "[agent.budget]\nmax_steps = 1\n"),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let provider = std::sync::Arc::clone(&model);
    tokio::task::spawn_blocking(move || {
        let server = start_server_with_env(&repo_path, &data_path, &[]);
        for (agent, _, _) in AGENTS {
            let before = provider.requests().len();
            let created = server.json(&["task", agent, "--agent", "Say done", "--with", agent]);
            let id = created["id"].as_str().unwrap().to_owned();
            // The first run has its one model call; the follow-up has none
            // left, and its first call is refused at the gateway.
            settle_after(&server, &id, 1);
            let output = server
                .cli()
                .args(["continue", &id, "--feedback", "say it again"])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{agent}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let view = settle_after(&server, &id, 2);
            assert!(
                ["failed", "no_changes"].contains(&view["task"]["state"].as_str().unwrap()),
                "{agent}: {view}"
            );
            let events = server.events(&id);
            let refusal = events
                .iter()
                .find(|e| e["kind"] == "policy_decision" && e["payload"]["step"] == "gateway")
                .unwrap_or_else(|| panic!("{agent}: no refusal at the gateway"));
            assert!(
                refusal["payload"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("1 of 1 model calls"),
                "{agent}: {refusal}"
            );
            assert_eq!(
                provider.requests().len() - before,
                1,
                "{agent}: only the call within budget reached the provider"
            );
            assert_eq!(task_processes(&id), 0, "{agent} outlived its run");
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_any_agent_mid_call_ends_all_its_processes() {
    let model = std::sync::Arc::new(
        ScriptedModel::start((0..20).map(|_| Reply::text("late").held()).collect()).await,
    );
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(data.path(), &config(&model, ""));
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let provider = std::sync::Arc::clone(&model);
    tokio::task::spawn_blocking(move || {
        let server = start_server_with_env(&repo_path, &data_path, &[]);
        for (agent, _, _) in AGENTS {
            let before = provider.requests().len();
            let created = server.json(&["task", agent, "--agent", "Say done", "--with", agent]);
            let id = created["id"].as_str().unwrap().to_owned();
            // It waits for its model's answer, which does not come.
            for _ in 0..1200 {
                if provider.requests().len() > before {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                provider.requests().len() > before,
                "{agent} never called its model"
            );
            assert!(task_processes(&id) > 0, "{agent}'s processes are not found");
            let cancelled = server.cli().args(["cancel", &id]).output().unwrap();
            assert!(cancelled.status.success(), "{agent}");
            let mut left = usize::MAX;
            for _ in 0..200 {
                left = task_processes(&id);
                if left == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(left, 0, "{left} of {agent}'s processes outlived the cancel");
            assert_eq!(
                wait_settled(&server, &id)["task"]["state"],
                "cancelled",
                "{agent}"
            );
        }
    })
    .await
    .unwrap();
    model.release();
}
