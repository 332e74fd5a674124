//! The companion in a real browser: the Rust side starts the scripted model
//! and the server and makes a pairing code; `tests/companion/e2e.mjs` drives
//! Debian's chromium through playwright-core. Screenshots land in
//! `target/companion-screenshots/`.
//!
//! Over 400 lines: the companion in real browsers (pairing, tasks, push, TLS, webhooks), each
//! test a whole session.

use super::support::{BIN, start_server};
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

/// Starts a server on `repo`, lets `prepare` act on it (make tasks) and
/// name more variables for the script, pairs a device with `scope`, and
/// runs `tests/companion/<script>` with node against it; fails the test,
/// with the server's log, when the script does.
async fn run_browser_script(
    script: &str,
    repo: &TempRepo,
    data: &std::path::Path,
    scope: &str,
    prepare: impl FnOnce(&super::support::Server) -> Vec<(&'static str, String)> + Send + 'static,
) {
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is missing: npm install --prefix ~/.cache/pushpals/node playwright-core@1.64.1 \
         (and apt-get install chromium); .ci/run does both"
    );
    let shots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/companion-screenshots");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/companion")
        .join(script);
    let (repo_path, data_path, scope) = (repo.path.clone(), data.to_path_buf(), scope.to_owned());
    let (status, log) = tokio::task::spawn_blocking(move || {
        let server = start_server(&repo_path, &data_path);
        let extra = prepare(&server);
        let pairing = server.json(&["pair", "--scope", &scope]);
        let code = pairing["code"].as_str().unwrap().to_owned();
        let status = std::process::Command::new("node")
            .arg(&script)
            .env("PUSHPALS_NODE_MODULES", &modules)
            .env("PUSHPALS_URL", &server.url)
            .env("PUSHPALS_CODE", &code)
            .env("PUSHPALS_SHOTS", &shots)
            .envs(extra)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_ask_watch_approve_and_deny_in_a_real_browser() {
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
    run_browser_script("e2e.mjs", &repo, data.path(), "approve", |_| Vec::new()).await;
}

/// A 4×4 red PNG.
const PNG: [u8; 73] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0,
    0, 0, 38, 147, 9, 41, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 71, 12, 196,
    113, 0, 174, 147, 15, 241, 208, 95, 35, 158, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_artifacts_show_failures_first_images_previewed_and_html_only_downloaded() {
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is missing"
    );
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"cp fixtures/junit.xml reports/junit.xml; exit 1\"\n\
         artifacts = [\"reports/*.xml\", \"shots/*.png\", \"report/*.html\"]\n",
    );
    repo.write(
        "fixtures/junit.xml",
        r#"<testsuite><testcase classname="suite" name="adds"/><testcase classname="suite" name="crashes"><failure/></testcase><testcase classname="suite" name="parses"/></testsuite>"#,
    );
    repo.write("reports/.keep", "");
    repo.write(
        "report/index.html",
        "<script>window.__xss = 3</script><p>coverage</p>",
    );
    std::fs::create_dir_all(repo.path.join("shots")).unwrap();
    std::fs::write(repo.path.join("shots/home.png"), PNG).unwrap();
    repo.commit_all("artifacts");
    let data = tempfile::tempdir().unwrap();
    run_browser_script("artifacts.mjs", &repo, data.path(), "read", |server| {
        let task = server.json(&["task", "Run the tests", "--run", "true"]);
        let id = task["id"].as_str().unwrap().to_owned();
        server.wait_for_state_within(&id, "failed", std::time::Duration::from_secs(60));
        vec![("PUSHPALS_TASK", id)]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_views_stay_true_and_approvals_happen_once_on_a_phone() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    run_browser_script("live.mjs", &repo, data.path(), "approve", |_| Vec::new()).await;
}

/// Writes task #1 into a fresh data dir before its server starts: 3,000
/// output events (the 1,500th 5,000 characters long), then cancelled.
async fn seed_long_timeline(data: &std::path::Path, repo: &std::path::Path) -> String {
    use pushpals_core::{Actor, EventKind, NewEvent, TaskId, TaskState};
    use pushpals_store::{Durability, NewRepository, Store, TaskRow, TaskUpdate};
    let store = Store::open(data, Durability::Normal).unwrap();
    let id = TaskId::parse("long-timeline-1").unwrap();
    let task = id.clone();
    // The repository as the server that wrote this registered it.
    let (path, home) = (
        std::fs::canonicalize(repo)
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        data.to_string_lossy().into_owned(),
    );
    store
        .write(move |tx| {
            tx.add_repository(
                &NewRepository {
                    name: "seeded",
                    path: &path,
                    origin: None,
                    branch: None,
                    home: &home,
                },
                Actor::Orchestrator,
            )?;
            tx.insert_task(
                TaskRow {
                    id: &task,
                    repo: "seeded",
                    title: "A long timeline",
                    command: Some("true"),
                    agent: None,
                    sandbox: serde_json::Value::Null,
                },
                Actor::User("admin".into()),
            )?;
            for n in 0..3000 {
                let text = if n == 1500 {
                    "y".repeat(5000)
                } else {
                    format!("line {n}\n")
                };
                tx.append(NewEvent::for_task(
                    &task,
                    Actor::Orchestrator,
                    EventKind::Output,
                    serde_json::json!({ "stream": "stdout", "text": text }),
                ))?;
            }
            tx.transition(
                &task,
                TaskState::Cancelled,
                TaskUpdate::default(),
                Actor::User("admin".into()),
                serde_json::Value::Null,
            )?;
            Ok(())
        })
        .await
        .unwrap();
    drop(store);
    id.as_str().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_a_long_timeline_and_the_chat_are_made_for_thumbs() {
    let repo = TempRepo::new();
    repo.write("src/small.txt", "alpha beta gamma\nsecond line\n");
    let lines: String = (0..300).map(|i| format!("line {i}\n")).collect();
    repo.write("big.txt", &lines);
    repo.commit_all("a small and a large file");
    let data = tempfile::tempdir().unwrap();
    let long = seed_long_timeline(data.path(), &repo.path).await;
    run_browser_script("review.mjs", &repo, data.path(), "approve", move |server| {
        let (review, _) = server.task_until(
            "Review me",
            "printf 'alpha BETA gamma\\nsecond line\\n' > src/small.txt; seq 1 2 600 > big.txt; echo new > added.txt",
            "awaiting_approval",
        );
        for n in 0..2 {
            server.task_until(
                &format!("Also waiting {n}"),
                &format!("echo {n} > other-{n}.txt"),
                "awaiting_approval",
            );
        }
        vec![("PUSHPALS_REVIEW", review), ("PUSHPALS_LONG", long)]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colours_times_cancel_and_a_read_only_device_are_shown_as_they_are() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    run_browser_script("trust.mjs", &repo, data.path(), "approve", |server| {
        let (coloured, _) = server.task_until(
            "Colours",
            "printf '\\033[31mred\\033[0m plain\\n'; echo x > x.txt",
            "awaiting_approval",
        );
        let running = server.json(&["task", "Sleep", "--run", "sleep 60"]);
        let running = running["id"].as_str().unwrap().to_owned();
        server.wait_for_state_within(&running, "running", std::time::Duration::from_secs(30));
        let read = server.json(&["pair", "--scope", "read"]);
        vec![
            (
                "PUSHPALS_READ_CODE",
                read["code"].as_str().unwrap().to_owned(),
            ),
            ("PUSHPALS_COLOURED", coloured),
            ("PUSHPALS_RUNNING", running),
        ]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_switches_between_two_repositories_and_starts_work_in_the_chosen_one() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let second = TempRepo::new();
    let second_path = std::fs::canonicalize(&second.path).unwrap();
    run_browser_script("repos.mjs", &repo, data.path(), "approve", move |server| {
        let added = server.json(&[
            "repo",
            "add",
            second_path.to_str().unwrap(),
            "--name",
            "tool",
        ]);
        assert_eq!(added["name"], "tool", "{added}");
        assert_eq!(server.repo_names(), ["repo", "tool"]);
        // With two repositories a task must say which.
        let refused = server
            .cli()
            .args(["task", "Where?", "--run", "true"])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let refused = String::from_utf8_lossy(&refused.stderr);
        assert!(refused.contains("several repositories"), "{refused}");
        for name in ["repo", "tool"] {
            let title = format!("In {name}");
            let task = server.json(&["task", &title, "--run", "true", "--repo", name]);
            assert_eq!(task["repo"], name, "{task}");
        }
        vec![
            ("PUSHPALS_FIRST", "repo".to_owned()),
            ("PUSHPALS_SECOND", "tool".to_owned()),
        ]
    })
    .await;
    drop(second);
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
    super::support::write_config(
        data.path(),
        &format!(
            "[notify]\nwebhook = \"http://127.0.0.1:{port}/pushpals\"\npublic_url = \"https://phone.example\"\n"
        ),
    );
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
        requests[0].contains("title: Approval needed: commit for \"Touch\""),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains(&format!("click: https://phone.example/#task/{id}")));
    assert!(
        requests[1].contains("title: \"Touch\" committed"),
        "{}",
        requests[1]
    );
}

/// What a push service received: each request's head and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A push service on loopback: records each request (head, body) and
/// answers 201, then 410 from the `gone_after`-th request on.
fn push_service(gone_after: usize) -> (u16, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let count = {
                let mut got = sink.lock().unwrap();
                got.push((head, body));
                got.len()
            };
            let answer: &[u8] = if count > gone_after {
                b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            };
            let _ = reader.get_mut().write_all(answer);
        }
    });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_browser_gets_an_encrypted_push_and_a_gone_one_is_dropped() {
    use pushpals_server::webpush::crypto::{b64, decrypt};
    // The receiving browser's keys: RFC 8291's published example.
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    let (port, got) = push_service(1);
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || start_server(&repo_path, &data_path))
        .await
        .unwrap();
    let token = std::fs::read_to_string(data.path().join("admin.token")).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let key: serde_json::Value = http
        .get(format!("{}/api/v1/push/key", server.url))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let server_key = key["public_key"].as_str().unwrap().to_owned();
    let endpoint = format!("http://127.0.0.1:{port}/push/device-1");
    let subscribed = http
        .post(format!("{}/api/v1/push/subscriptions", server.url))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "endpoint": endpoint, "expirationTime": null, "keys": { "p256dh": UA_PUBLIC, "auth": AUTH } }))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 201);
    let refused = http
        .post(format!("{}/api/v1/push/subscriptions", server.url))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "endpoint": "http://push.example/x", "keys": { "p256dh": UA_PUBLIC, "auth": AUTH } }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "plain http off loopback is refused");

    let id = tokio::task::spawn_blocking(move || {
        let task = server.json(&["task", "Touch", "--run", "touch t.txt"]);
        let id = task["id"].as_str().unwrap().to_owned();
        server.wait_for_state(&id, "awaiting_approval");
        server.json(&["approve", &id]);
        server.wait_for_state(&id, "committed");
        (id, server)
    })
    .await
    .unwrap();
    let (id, server) = id;
    let mut requests = Vec::new();
    for _ in 0..100 {
        requests = got.lock().unwrap().clone();
        if requests.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(requests.len(), 2, "the approval and the commit each push");
    let (head, body) = &requests[0];
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("post /push/device-1 "), "{head}");
    assert!(head.contains("content-encoding: aes128gcm") && head.contains("ttl: 86400"));
    assert!(head.contains("urgency: high"));
    assert!(
        head.contains(&format!(", k={}", server_key.to_ascii_lowercase())),
        "{head}"
    );
    let plain = decrypt(body, &b64(UA_PRIVATE).unwrap(), &b64(AUTH).unwrap()).unwrap();
    let notice: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(notice["title"], "Approval needed: commit for \"Touch\"");
    assert_eq!(notice["url"], format!("/#task/{id}"));

    // The service answered 410 to the second push: the subscription is gone.
    let db = rusqlite::Connection::open(server.data_dir.join("pushpals.db")).unwrap();
    let mut left = 1i64;
    for _ in 0..50 {
        left = db
            .query_row("SELECT COUNT(*) FROM push_subscriptions", [], |row| {
                row.get(0)
            })
            .unwrap();
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(left, 0);
    drop(server);
}

/// geckodriver: `PUSHPALS_GECKODRIVER`, or where `.ci/run` installs it.
fn geckodriver() -> PathBuf {
    if let Some(path) = std::env::var_os("PUSHPALS_GECKODRIVER") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/pushpals/geckodriver/bin/geckodriver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_subscribes_and_shows_an_encrypted_push_relayed_by_a_local_push_service() {
    let driver = geckodriver();
    assert!(
        driver.is_file(),
        "geckodriver is missing at {}: cargo install geckodriver --root ~/.cache/pushpals/geckodriver \
         (and apt-get install firefox-esr); .ci/run does both",
        driver.display()
    );
    assert!(
        std::path::Path::new("/usr/bin/firefox-esr").is_file(),
        "firefox-esr is missing: apt-get install firefox-esr"
    );
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    run_browser_script(
        "push-firefox.mjs",
        &repo,
        data.path(),
        "approve",
        move |_| vec![("PUSHPALS_GECKODRIVER", driver.display().to_string())],
    )
    .await;
    // The push service said the subscription is gone: it was dropped, and
    // the log says so.
    let db = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM push_subscriptions", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(left, 0, "the gone subscription was dropped");
    let (subscribed, dropped): (i64, i64) = db
        .query_row(
            "SELECT SUM(kind = 'push_subscribed'), SUM(kind = 'push_unsubscribed') FROM events",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((subscribed, dropped), (1, 1));
    // Dropped by Push Pals because the service said so, not by the person.
    let (actor, payload): (String, String) = db
        .query_row(
            "SELECT actor, payload FROM events WHERE kind = 'push_unsubscribed'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(actor, "orchestrator");
    assert!(payload.contains("answered 410"), "{payload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_on_a_real_name_the_companion_is_a_secure_installable_app() {
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is missing; .ci/run installs it"
    );
    assert!(
        std::process::Command::new("certutil")
            .arg("-H")
            .output()
            .is_ok(),
        "certutil is missing: apt-get install libnss3-tools (.ci/run does)"
    );
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("tls");
    let made = std::process::Command::new(BIN)
        .args([
            "tls",
            "init",
            "--name",
            "pushpals.test",
            "--name",
            "127.0.0.1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    super::support::write_config(
        data.path(),
        &format!(
            "[tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\nca = \"{0}/ca.pem\"\n",
            out.display()
        ),
    );
    // A scratch HOME whose NSS database trusts the private CA.
    let home = tempfile::tempdir().unwrap();
    let nssdb = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    for args in [
        vec!["-d", &db, "-N", "--empty-password"],
        vec![
            "-d",
            &db,
            "-A",
            "-t",
            "C,,",
            "-n",
            "pushpals-test-ca",
            "-i",
            out.join("ca.pem").to_str().unwrap(),
        ],
    ] {
        let status = std::process::Command::new("certutil")
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success(), "certutil {args:?}");
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/companion/tls.mjs");
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let home_path = home.path().to_path_buf();
    let (output, log) = tokio::task::spawn_blocking(move || {
        let server = start_server(&repo_path, &data_path);
        let port = server.url.rsplit(':').next().unwrap().to_owned();
        let pairing = server
            .cli()
            .env("PUSHPALS_CA_CERT", data_path.join("tls/ca.pem"))
            .args(["pair", "--scope", "approve", "--json"])
            .output()
            .unwrap();
        assert!(
            pairing.status.success(),
            "{}",
            String::from_utf8_lossy(&pairing.stderr)
        );
        let pairing: serde_json::Value = serde_json::from_slice(&pairing.stdout).unwrap();
        let output = std::process::Command::new("node")
            .arg(&script)
            .env("PUSHPALS_NODE_MODULES", &modules)
            .env("PUSHPALS_URL", format!("https://pushpals.test:{port}"))
            .env("PUSHPALS_CODE", pairing["code"].as_str().unwrap())
            .env("PUSHPALS_HOST_RULES", "MAP pushpals.test 127.0.0.1")
            .env("HOME", &home_path)
            .output()
            .expect("node must be installed");
        let log = server.log.lock().unwrap().clone();
        (output, log)
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}\nserver log:\n{log}");
    // Offline, Chromium's push service is out of reach: the outcome is
    // shown, not required.
    let push = said.lines().find(|l| l.starts_with("push: "));
    eprintln!("{}", push.expect("the script reports the push attempt"));
}
