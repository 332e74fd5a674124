//! Any command as an agent: the gateway and nothing else, budgets, cancel, a missing agent.

use super::*;
use crate::suite::support::{start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_agent_reaches_its_model_only_through_the_gateway_within_budget() {
    let model = ScriptedModel::start(vec![Reply::text("hello from the model")]).await;
    let port = host_listener();
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let call = r#"curl -s -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d '{"model":"any","messages":[{"role":"user","content":"hi"}]}' "$OPENAI_BASE_URL/chat/completions""#;
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{base}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agent.budget]\nmax_steps = 1\n\
             [agents.scripted]\ncommand = '''\n\
             env | sort > seen-env.txt\n\
             (curl -s --max-time 3 http://127.0.0.1:{port}/ || echo unreachable) > host.txt\n\
             {call} > first.txt\n\
             {call} > second.txt\n\
             cat > prompt-seen.txt\n'''\n",
            base = model.openai_base(),
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Try the model",
            "--agent",
            "Say hello; it's a test",
            "--with",
            "scripted",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["agent"]["external"], "scripted");
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );

        // The model answered through the gateway; the second call was over
        // the budget of one model call and was refused with the reason.
        assert!(worktree_file(&view, "first.txt").contains("hello from the model"));
        let second = worktree_file(&view, "second.txt");
        assert!(
            second.contains("budget") && second.contains("1 of 1 model calls"),
            "{second}"
        );
        let events = server.events(&id);
        let refusal = first_event(&events, "policy_decision");
        assert_eq!(refusal["payload"]["step"], "gateway", "{refusal}");
        assert_eq!(refusal["payload"]["decision"], "deny");
        assert!(
            refusal["payload"]["reason"]
                .as_str()
                .unwrap()
                .contains("1 of 1 model calls"),
            "{refusal}"
        );
        // No key, no host network, only the gateway and the token.
        let env = worktree_file(&view, "seen-env.txt");
        assert!(!env.contains(KEY), "the real key reached the sandbox");
        assert!(
            env.contains("OPENAI_BASE_URL=http://127.0.0.1:4141/v1"),
            "{env}"
        );
        assert!(env.contains("OPENAI_API_KEY=ppgw-"), "{env}");
        assert_eq!(worktree_file(&view, "host.txt"), "unreachable\n");
        assert_eq!(
            worktree_file(&view, "prompt-seen.txt"),
            "Say hello; it's a test"
        );
        assert_eq!(view["task"]["usage"]["model_calls"], 1);

        let events = server.events(&id);
        let kinds = kinds(&events);
        assert!(kinds.contains(&"agent_started".to_owned()), "{kinds:?}");
        let call = events
            .iter()
            .find(|e| e["kind"] == "model_call")
            .expect("the gateway's call is an event");
        assert_eq!(call["payload"]["via"], "gateway");
        assert_eq!(call["payload"]["model"], "strong");
        assert!(call["payload"]["request_blob"].is_string());
        let export = server.cli().args(["audit", "export"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&export.stdout).contains(KEY));
        assert!(!server.log.lock().unwrap().contains(KEY));
        // The private home goes with the task's worktree.
        let home = server.data_dir.join("homes").join(&id);
        assert!(home.join("prompt.txt").is_file(), "{}", home.display());
        let denied = server
            .cli()
            .args(["deny", &id, "--action", "commit"])
            .output()
            .unwrap();
        assert!(denied.status.success());
        let removed = server.cli().args(["task", "rm", &id]).output().unwrap();
        assert!(
            removed.status.success(),
            "{}",
            String::from_utf8_lossy(&removed.stderr)
        );
        assert!(!home.exists(), "the agent's home outlived its task");
        let metrics = metrics(&server);
        for series in [
            "pushpals_model_calls_total{model=\"strong\"} 1\n",
            "pushpals_gateway_first_byte_seconds_count{model=\"strong\",protocol=\"openai_chat\",translated_to=\"none\"} 1\n",
        ] {
            assert!(metrics.contains(series), "{series} in\n{metrics}");
        }
    })
    .await
    .unwrap();
    // The provider got the real key and the configured model, once.
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(requests[0].body["model"], "m-real");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_agent_kills_its_whole_process_tree() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        "[models.strong]\nprotocol = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [agents.sleeper]\ncommand = \"sleep 3017 & (sleep 3018 &) ; sleep 3019\"\n",
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server = start_server_with_env(&repo_path, &data_path, &[]);
        let created = server.json(&["task", "Sleep", "--agent", "sleep", "--with", "sleeper"]);
        let id = created["id"].as_str().unwrap().to_owned();
        let all = || {
            processes(&["sleep", "3017"])
                + processes(&["sleep", "3018"])
                + processes(&["sleep", "3019"])
        };
        let mut started = false;
        for _ in 0..200 {
            if all() == 3 {
                started = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(started, "the agent's processes never all started");
        let cancelled = server.cli().args(["cancel", &id]).output().unwrap();
        assert!(cancelled.status.success());
        let mut gone = false;
        for _ in 0..100 {
            if all() == 0 {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            gone,
            "{} of the agent's processes outlived the cancel",
            all()
        );
        assert_eq!(wait_settled(&server, &id)["task"]["state"], "cancelled");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_is_not_installed_fails_with_the_install_command() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        "[models.strong]\nprotocol = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\n\
         [agents.claude-code]\nprogram = \"/nonexistent/claude\"\n",
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server = start_server_with_env(&repo_path, &data_path, &[]);
        let refused = server
            .cli()
            .args(["task", "X", "--agent", "x", "--with", "nobody"])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("[agents.nobody]"), "{stderr}");
        let created = server.json(&["task", "X", "--agent", "x", "--with", "claude-code"]);
        let view = wait_settled(&server, created["id"].as_str().unwrap());
        assert_eq!(view["task"]["state"], "failed");
        let reason = view["task"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("npm install -g @anthropic-ai/claude-code"),
            "{reason}"
        );
    })
    .await
    .unwrap();
}
