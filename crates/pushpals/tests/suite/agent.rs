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
             output_price_per_mtok = 15.0\n[server]\nmetrics_addr = \"127.0.0.1:0\"\n",
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
        let metrics = scrape(&server);
        let separate = server
            .log
            .lock()
            .unwrap()
            .lines()
            .find_map(|line| line.trim().strip_prefix("metrics:"))
            .map(|rest| rest.split_whitespace().next().unwrap().to_owned());
        let separate = separate.unwrap_or_else(|| panic!("no metrics address in the log"));
        let unauthenticated = tokio::runtime::Handle::current().block_on(async {
            reqwest::get(&separate).await.unwrap().text().await.unwrap()
        });
        assert!(unauthenticated.contains("pushpals_tasks{state=\"committed\"} 1\n"));
        for series in [
            "pushpals_tasks{state=\"committed\"} 1\n",
            "pushpals_model_calls_total{model=\"strong\"} 2\n",
            "pushpals_model_call_duration_seconds_count{model=\"strong\"} 2\n",
            "pushpals_approval_decision_seconds_count{action=\"commit\",decision=\"approved\"} 1\n",
            "pushpals_events_total{name=\"task_created\"} 1\n",
            "pushpals_queue_depth 0\n",
            "pushpals_approvals_pending 0\n",
            "pushpals_http_requests_total{method=\"POST\",route=\"/api/v1/tasks\",status=\"201\"} 1\n",
        ] {
            assert!(metrics.contains(series), "{series} in\n{metrics}");
        }
        let tokens = metric(&metrics, "pushpals_model_tokens_total{model=\"strong\",direction=\"input\"}");
        assert!(tokens > 0.0, "{metrics}");
        let cost = metric(&metrics, "pushpals_model_cost_dollars_total{model=\"strong\"}");
        let stored = view_cost(&server, &id);
        assert!((cost - stored).abs() < 1e-9, "{cost} against {stored}");
        assert!(metric(&metrics, "pushpals_event_write_seconds_count") > 0.0);
        assert!(metric(&metrics, "pushpals_task_duration_seconds_count{state=\"committed\"}") == 1.0);

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

/// `GET /api/v1/metrics` with the admin token; also checks that a call
/// without a token is refused.
fn scrape(server: &super::support::Server) -> String {
    let token = std::fs::read_to_string(server.data_dir.join("admin.token")).unwrap();
    let url = format!("{}/api/v1/metrics", server.url);
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Handle::current().block_on(async {
        let client = reqwest::Client::new();
        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        let answer = client
            .get(&url)
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let kind = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        answer.text().await.unwrap()
    })
}

/// The value of one series line.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
        .parse()
        .unwrap()
}

/// The task's stored cost, in dollars.
fn view_cost(server: &super::support::Server, id: &str) -> f64 {
    let view = server.json(&["status", id]);
    view["task"]["usage"]["cost_micros"].as_u64().unwrap() as f64 / 1_000_000.0
}
