//! External agents as workers, through the real server: each runs in the
//! task's sandbox with a private home, reaches its model only through the
//! gateway with the task's token, and its work is a task like any other.

use super::support::{Server, start_server_with_env, write_config};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const KEY: &str = "sk-test-external-0123456789abcdef";

/// A one-page HTTP server on the host's loopback, which no sandbox may reach.
fn host_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nHOST-REACHED",
            );
        }
    });
    port
}

/// A shell tool's input (`{"<field>": "..."}`): add `bar` to src/lib.rs,
/// print the environment, and try the host's listener on `port`.
fn edit_and_probe(field: &str, port: u16) -> String {
    let mut input = serde_json::Map::new();
    input.insert(
        field.to_owned(),
        Value::String(format!(
            "printf 'pub fn bar() {{}}\\n' >> src/lib.rs && env; curl -s --max-time 2 http://127.0.0.1:{port}/ || echo no-host"
        )),
    );
    input.insert(
        "description".to_owned(),
        Value::String("add bar".to_owned()),
    );
    Value::Object(input).to_string()
}

/// `GET /api/v1/metrics` with the admin token.
fn metrics(server: &Server) -> String {
    let token = std::fs::read_to_string(server.data_dir.join("admin.token")).unwrap();
    let url = format!("{}/api/v1/metrics", server.url);
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Handle::current().block_on(async {
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// Waits until the task has ended (any final state) or waits for the
/// person; returns its view.
fn wait_settled(server: &Server, id: &str) -> Value {
    for _ in 0..1200 {
        let view = server.json(&["status", id]);
        let state = view["task"]["state"].as_str().unwrap().to_owned();
        if [
            "awaiting_approval",
            "failed",
            "cancelled",
            "no_changes",
            "waiting",
        ]
        .contains(&state.as_str())
        {
            return view;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("task {id} never settled");
}

fn worktree_file(view: &Value, name: &str) -> String {
    let worktree = PathBuf::from(view["task"]["worktree_path"].as_str().unwrap());
    std::fs::read_to_string(worktree.join(name)).unwrap_or_default()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

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
            "pushpals_gateway_first_byte_seconds_count{model=\"strong\"} 1\n",
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

/// Processes whose command line is exactly `words`.
fn processes(words: &[&str]) -> usize {
    let wanted: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline")).is_ok_and(|line| line == wanted)
        })
        .count()
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

/// Where `.ci/run` installed the pinned agent `name` (see
/// `.ci/agent-versions`); `PUSHPALS_AGENTS_DIR` overrides the cache.
fn installed_agent(name: &str, program: &str) -> PathBuf {
    let versions = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/agent-versions"),
    )
    .unwrap();
    let version = versions
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&name))
        .and_then(|words| words.get(3).map(|v| (*v).to_owned()))
        .unwrap_or_else(|| panic!("{name} is not in .ci/agent-versions"));
    let dir = std::env::var_os("PUSHPALS_AGENTS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/pushpals/agents"),
        PathBuf::from,
    );
    let root = dir.join(format!("{name}-{version}"));
    let npm = root.join("node_modules/.bin").join(program);
    let path = if npm.exists() {
        npm
    } else {
        root.join("bin").join(program)
    };
    assert!(
        path.exists(),
        "{} is missing: run .ci/run (its agents stage installs the pinned agents)",
        path.display()
    );
    path
}

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
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agents.claude-code]\nprogram = \"{}\"\n",
            model.anthropic_base(),
            claude.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add a public function bar next to foo in src/lib.rs",
            "--with",
            "claude-code",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        // The unknown command asks: the task waits for the person.
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "waiting",
            "{}",
            view["task"]["reason"]
        );
        let pending = &view["approvals"][0];
        assert_eq!(pending["action"], "command", "{view}");
        assert!(pending.to_string().contains("frobnicate"), "{view}");
        let denied = server
            .cli()
            .args([
                "deny",
                &id,
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
            if server.json(&["status", &id])["task"]["state"] != "waiting" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );
        let diff = server.json(&["diff", &id]);
        let files = diff["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{diff}");
        assert_eq!(files[0]["path"], "src/lib.rs");
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\n"
        );

        let events = server.events(&id);
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
        let started = events
            .iter()
            .find(|e| e["kind"] == "agent_started")
            .unwrap();
        assert!(
            started["payload"]["version"]
                .as_str()
                .unwrap()
                .contains("2.1"),
            "{started}"
        );
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
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        let session = finished["payload"]["session"].as_str().unwrap().to_owned();

        // Feedback: the commit is rejected and the task continued; the
        // agent resumes its own session with the feedback as its prompt.
        let rejected = server
            .cli()
            .args(["deny", &id, "--action", "commit", "--reason", "needs baz"])
            .output()
            .unwrap();
        assert!(
            rejected.status.success(),
            "{}",
            String::from_utf8_lossy(&rejected.stderr)
        );
        let continued = server
            .cli()
            .args(["continue", &id, "--feedback", "also add baz"])
            .output()
            .unwrap();
        assert!(
            continued.status.success(),
            "{}",
            String::from_utf8_lossy(&continued.stderr)
        );
        for _ in 0..200 {
            let events = server.events(&id);
            if events
                .iter()
                .filter(|e| e["kind"] == "agent_finished")
                .count()
                == 2
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
        );
        let events = server.events(&id);
        let resumed = events
            .iter()
            .filter(|e| e["kind"] == "agent_started")
            .nth(1)
            .unwrap();
        assert_eq!(resumed["payload"]["resumed_session"], session.as_str());
    })
    .await
    .unwrap();
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
    for request in &requests {
        assert_eq!(request.header("x-api-key"), Some(KEY));
        assert_eq!(request.body["model"], "m-real");
    }
}

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
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agents.mini-swe-agent]\nprogram = \"{}\"\n",
            model.openai_base(),
            mini.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add a public function bar next to foo in src/lib.rs",
            "--with",
            "mini-swe-agent",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
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
        let diff = server.json(&["diff", &id]);
        assert_eq!(diff["files"].as_array().unwrap().len(), 1, "{diff}");
        let events = server.events(&id);
        let started = events
            .iter()
            .find(|e| e["kind"] == "agent_started")
            .unwrap();
        assert!(
            started["payload"]["version"]
                .as_str()
                .unwrap()
                .contains("2.4.6"),
            "{started}"
        );
        assert!(events.iter().any(|e| {
            e["kind"] == "agent_step"
                && e["payload"]["step"] == "tool_call"
                && e["payload"]["command"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("src/lib.rs")
        }));
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["ok"], true, "{finished}");
        assert_eq!(view["task"]["usage"]["model_calls"], 2);
    })
    .await
    .unwrap();
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
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(request.body["model"], "m-real");
    }
}

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
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"openai_responses\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agents.codex]\nprogram = \"{}\"\n",
            model.openai_base(),
            codex.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&["task", "Add bar", "--agent", "Add bar", "--with", "codex"]);
        let id = created["id"].as_str().unwrap().to_owned();
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
                .contains("0.169.0"),
            "{started}"
        );
        assert!(events.iter().any(|e| {
            e["kind"] == "agent_step"
                && e["payload"]["step"] == "tool_call"
                && e["payload"]["command"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("src/lib.rs")
        }));
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        let session = finished["payload"]["session"].as_str().unwrap().to_owned();

        let rejected = server
            .cli()
            .args(["deny", &id, "--action", "commit", "--reason", "needs baz"])
            .output()
            .unwrap();
        assert!(rejected.status.success());
        let continued = server
            .cli()
            .args(["continue", &id, "--feedback", "also add baz"])
            .output()
            .unwrap();
        assert!(
            continued.status.success(),
            "{}",
            String::from_utf8_lossy(&continued.stderr)
        );
        for _ in 0..300 {
            if server
                .events(&id)
                .iter()
                .filter(|e| e["kind"] == "agent_finished")
                .count()
                == 2
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "awaiting_approval",
            "{}",
            view["task"]["reason"]
        );
        assert_eq!(
            worktree_file(&view, "src/lib.rs"),
            "pub fn foo() {}\npub fn bar() {}\npub fn baz() {}\n"
        );
        let resumed = server
            .events(&id)
            .into_iter()
            .filter(|e| e["kind"] == "agent_started")
            .nth(1)
            .unwrap();
        assert_eq!(resumed["payload"]["resumed_session"], session.as_str());
    })
    .await
    .unwrap();
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
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(request.body["model"], "m-real");
    }
}

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
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"gemini\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agents.gemini-cli]\nprogram = \"{}\"\n",
            model.anthropic_base(),
            gemini.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add bar",
            "--with",
            "gemini-cli",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        // In its ACP mode every tool call asks Push Pals: the command has a
        // `curl`, which policy asks about, so the task waits for the person.
        let view = wait_settled(&server, &id);
        assert_eq!(
            view["task"]["state"], "waiting",
            "{}",
            view["task"]["reason"]
        );
        assert!(view["approvals"][0].to_string().contains("curl"), "{view}");
        let approved = server
            .cli()
            .args(["approve", &id, "--action", "command"])
            .output()
            .unwrap();
        assert!(
            approved.status.success(),
            "{}",
            String::from_utf8_lossy(&approved.stderr)
        );
        for _ in 0..200 {
            if server.json(&["status", &id])["task"]["state"] != "waiting" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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
        assert_eq!(started["payload"]["session_protocol"], "acp", "{started}");
        assert!(
            events.iter().any(|e| e["kind"] == "policy_decision"
                && e["payload"]["command"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("src/lib.rs")),
            "the command was judged by policy"
        );
        assert!(
            started["payload"]["version"]
                .as_str()
                .unwrap()
                .contains("0.61.0"),
            "{started}"
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
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["ok"], true);
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
        assert_eq!(view["task"]["usage"]["model_calls"], 2);
    })
    .await
    .unwrap();
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
    for request in &requests {
        assert_eq!(request.header("x-goog-api-key"), Some(KEY));
        assert_eq!(request.body["model"], "m-real");
    }
}

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
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agents.opencode]\nprogram = \"{}\"\n",
            model.openai_base(),
            opencode.display()
        ),
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
        let approved = server
            .cli()
            .args(["approve", &id, "--action", "command"])
            .output()
            .unwrap();
        assert!(
            approved.status.success(),
            "{}",
            String::from_utf8_lossy(&approved.stderr)
        );
        for _ in 0..200 {
            if server.json(&["status", &id])["task"]["state"] != "waiting" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(request.body["model"], "m-real");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_stops_claude_code_with_the_reason() {
    let claude = installed_agent("claude-code", "claude");
    let model = ScriptedModel::start(vec![
        Reply::tool("Bash", r#"{"command":"ls","description":"look"}"#),
        Reply::text("never sent: the budget stops the second call"),
    ])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             [agent.budget]\nmax_steps = 1\n\
             [agents.claude-code]\nprogram = \"{}\"\n",
            model.anthropic_base(),
            claude.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server = start_server_with_env(&repo_path, &data_path, &[]);
        let created = server.json(&[
            "task",
            "Look",
            "--agent",
            "Look around",
            "--with",
            "claude-code",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        let view = wait_settled(&server, &id);
        assert_eq!(view["task"]["state"], "failed", "{view}");
        let reason = view["task"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("budget") && reason.contains("1 of 1 model calls"),
            "{reason}"
        );
        assert_eq!(view["task"]["usage"]["model_calls"], 1);
    })
    .await
    .unwrap();
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
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"local-coder\"\n\
             [agents.claude-code]\nprogram = \"{}\"\n",
            model.openai_base(),
            claude.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server = start_server_with_env(&repo_path, &data_path, &[]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add bar",
            "--with",
            "claude-code",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
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
        let finished = events
            .iter()
            .find(|e| e["kind"] == "agent_finished")
            .unwrap();
        assert_eq!(finished["payload"]["summary"], "Added bar next to foo.");
    })
    .await
    .unwrap();
    for request in model.requests() {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.body["model"], "local-coder");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_applies_a_search_replace_edit_from_the_gateway() {
    let aider = installed_agent("aider", "aider");
    let model = ScriptedModel::start(vec![Reply::text(
        "I'll add bar.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\npub fn foo() {}\n=======\npub fn foo() {}\npub fn bar() {}\n>>>>>>> REPLACE\n```\n",
    )])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"m-real\"\n\
             api_key_env = \"PUSHPALS_TEST_MODEL_KEY\"\n\
             [agents.aider]\nprogram = \"{}\"\n",
            model.openai_base(),
            aider.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let server =
            start_server_with_env(&repo_path, &data_path, &[("PUSHPALS_TEST_MODEL_KEY", KEY)]);
        let created = server.json(&[
            "task",
            "Add bar",
            "--agent",
            "Add a public function bar next to foo in src/lib.rs",
            "--with",
            "aider",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
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
        let diff = server.json(&["diff", &id]);
        let files: Vec<&str> = diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            files,
            ["src/lib.rs"],
            "no history or cache files in the worktree"
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
                .contains("0.86.2"),
            "{started}"
        );
        assert!(events.iter().any(|e| e["kind"] == "agent_step"
            && e["payload"]["step"] == "tool_call"
            && e["payload"]["file"] == "src/lib.rs"));
        let export = server.cli().args(["audit", "export"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&export.stdout).contains(KEY));
    })
    .await
    .unwrap();
    let requests = model.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(request.body["model"], "m-real");
    }
}
