//! The companion in a real browser: the Rust side starts the scripted model
//! and the server and makes a pairing code; `tests/companion/e2e.mjs` drives
//! Debian's chromium through playwright-core. Screenshots land in
//! `target/companion-screenshots/`.

use super::support::start_server;
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};
use std::path::PathBuf;

const GREETING_PLAN: &str = r#"{"summary":"one file","tasks":[{"key":"g","title":"Add greeting","prompt":"Create greeting.txt"}]}"#;
const FAREWELL_PLAN: &str = r#"{"summary":"one file","tasks":[{"key":"f","title":"Add farewell","prompt":"Create farewell.txt"}]}"#;

/// Where playwright-core is installed (`.ci/run` puts it there).
fn node_modules() -> PathBuf {
    if let Some(dir) = std::env::var_os("PUSHPALS_NODE_MODULES") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/pushpals/node/node_modules")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_ask_watch_approve_and_deny_in_a_real_browser() {
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is missing: npm install --prefix ~/.cache/pushpals/node playwright-core@1.64.1 \
         (and apt-get install chromium); .ci/run does both"
    );
    let model = ScriptedModel::start_keyed(vec![
        (
            "submit_plan",
            vec![
                Reply::tool("submit_plan", GREETING_PLAN),
                Reply::tool("submit_plan", FAREWELL_PLAN),
            ],
        ),
        (
            "Task: Add greeting",
            vec![
                Reply::tool(
                    "run_command",
                    r#"{"command":"echo step-one; sleep 1; echo '<img src=x onerror=\"window.__xss=1\">'; echo step-two"}"#,
                ),
                Reply::tool(
                    "write_file",
                    r#"{"path":"greeting.txt","content":"<script>window.__xss=2</script>\nhello\n"}"#,
                ),
                Reply::tool("finish", r#"{"summary":"Added greeting.txt."}"#),
            ],
        ),
        (
            "Task: Add farewell",
            vec![
                Reply::tool("write_file", r#"{"path":"farewell.txt","content":"bye\n"}"#),
                Reply::tool("finish", r#"{"summary":"Added farewell.txt."}"#),
            ],
        ),
    ])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let config_dir = data.path().join("config-home/pushpals");
    std::fs::create_dir_all(&config_dir).unwrap();
    let models = |name: &str| {
        format!(
            "[models.{name}]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
            model.openai_base()
        )
    };
    std::fs::write(
        config_dir.join("config.toml"),
        format!("{}{}", models("fast"), models("strong")),
    )
    .unwrap();
    let shots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/companion-screenshots");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/companion/e2e.mjs");
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let (status, log) = tokio::task::spawn_blocking(move || {
        let server = start_server(&repo_path, &data_path);
        let pairing = server.json(&["pair", "--scope", "approve"]);
        let code = pairing["code"].as_str().unwrap().to_owned();
        let status = std::process::Command::new("node")
            .arg(&script)
            .env("PUSHPALS_NODE_MODULES", &modules)
            .env("PUSHPALS_URL", &server.url)
            .env("PUSHPALS_CODE", &code)
            .env("PUSHPALS_SHOTS", &shots)
            .status()
            .expect("node must be installed");
        let log = server.log.lock().unwrap().clone();
        (status, log)
    })
    .await
    .unwrap();
    assert!(
        status.success(),
        "the browser test failed (see its output above); server log:\n{log}"
    );
}
