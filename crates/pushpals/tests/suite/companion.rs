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

/// A webhook receiver on loopback: the raw requests it got.
fn webhook() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = Vec::new();
            let mut buffer = [0u8; 8192];
            stream
                .set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).into_owned());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

#[test]
fn the_webhook_hears_of_approvals_and_endings_with_a_link() {
    let (port, got) = webhook();
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let config_dir = data.path().join("config-home/pushpals");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[notify]\nwebhook = \"http://127.0.0.1:{port}/pushpals\"\npublic_url = \"https://phone.example\"\n"
        ),
    )
    .unwrap();
    let server = start_server(&repo.path, data.path());
    let task = server.json(&["task", "Touch", "--run", "touch t.txt"]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "awaiting_approval");
    server.json(&["approve", &id]);
    server.wait_for_state(&id, "committed");
    let mut requests = Vec::new();
    for _ in 0..100 {
        requests = got.lock().unwrap().clone();
        if requests.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].starts_with("POST /pushpals "));
    assert!(
        requests[0].contains("title: Approval needed: commit"),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains(&format!("click: https://phone.example/#task/{id}")));
    assert!(
        requests[1].contains(&format!("title: Task {id} committed")),
        "{}",
        requests[1]
    );
}
