//! A warm cache on a worker, played by the test: a worker without the
//! cache gets the setup (asked for here first) and the warm-up run in its
//! build, then seals it; a worker with it starts warm asking nothing; a
//! worker that cannot keep it fails the task saying why; an answer under
//! another lease is refused. A lock file an agent or a command changes on
//! a worker gets the setup again, in the worker's clone, before the checks.

use super::support::api_on;
use super::worker_runs::{enrolled, events, next, state_until};
use axum::http::StatusCode;
use pushpals_test_support::TempRepo;
use serde_json::{Value, json};

/// A repository with a setup and one check.
fn repo_with_setup() -> TempRepo {
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[setup]\ncommand = \"mkdir -p .venv\"\n[checks]\ntest = \"true\"\n",
    );
    repo.commit_all("setup");
    repo
}

async fn task(api: &super::support::Api) -> String {
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "t", "command": "echo hi > A.md" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    task["id"].as_str().unwrap().to_owned()
}

/// Ends command `run` with exit code 0.
async fn ran(api: &super::support::Api, token: &str, id: &str, run: &Value) {
    let report = json!({ "lease": run["lease"], "seq": run["seq"], "chunks": 0, "exit_code": 0 });
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/v1/workers/tasks/{id}/result"),
            Some(token),
            Some(report),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_builds_its_cache_once_asked_and_then_starts_warm() {
    let api = api_on(repo_with_setup(), "[workers]\nlocal = false\n").await;
    let token = enrolled(&api, "w1").await;
    let id = task(&api).await;
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    let warm = next(&api, &token, holding.clone()).await;
    assert_eq!(warm["kind"], "warm", "{warm}");
    let key = warm["key"].as_str().unwrap().to_owned();
    let answer = format!("/api/v1/workers/tasks/{id}/warm");
    let (status, _) = api
        .call(
            "POST",
            &answer,
            Some(&token),
            Some(json!({ "lease": lease + 1, "key": key, "used": false })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "another lease");
    let (status, _) = api
        .call(
            "POST",
            &answer,
            Some(&token),
            Some(json!({ "lease": lease, "key": key, "used": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The setup is asked for here before the worker runs it.
    let waiting = state_until(&api, &id, "waiting").await;
    let approval = waiting["approvals"][0]["id"].as_i64().unwrap();
    let summary = waiting["approvals"][0]["summary"].as_str().unwrap();
    assert!(summary.contains("mkdir -p .venv"), "{summary}");
    assert!(summary.contains("on worker w1"), "{summary}");
    let (status, _) = api
        .authed(
            "POST",
            &format!("/api/v1/approvals/{approval}/decide"),
            Some(json!({ "decision": "approve" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let setup = next(&api, &token, holding.clone()).await;
    assert_eq!(setup["command_line"], "mkdir -p .venv", "{setup}");
    assert_eq!(setup["in_build"], true);
    assert_eq!(setup["at_stable_path"], true);
    ran(&api, &token, &id, &setup).await;
    let warm_up = next(&api, &token, holding.clone()).await;
    assert_eq!(warm_up["command_line"], "true", "{warm_up}");
    assert_eq!(warm_up["in_build"], true);
    ran(&api, &token, &id, &warm_up).await;
    let seal = next(&api, &token, holding.clone()).await;
    assert_eq!(seal["kind"], "seal", "{seal}");
    assert_eq!(seal["key"], key.as_str());
    let kept = json!({
        "lease": lease, "key": key, "used": true, "entries": [".venv"], "files": 0,
        "bytes": 0, "sha256": "ab", "built_at": start["base_commit"],
    });
    let (status, _) = api.call("POST", &answer, Some(&token), Some(kept)).await;
    assert_eq!(status, StatusCode::OK);
    // Then the task's own command, in the clone.
    let command = next(&api, &token, holding.clone()).await;
    assert_eq!(command["command_line"], "echo hi > A.md", "{command}");
    assert!(command["in_build"].is_null(), "{command}");
    let kinds: Vec<Value> = events(&api, &id)
        .await
        .into_iter()
        .map(|e| e["kind"].clone())
        .collect();
    for kind in ["cache_built", "cache_used"] {
        assert!(kinds.contains(&json!(kind)), "{kind} in {kinds:?}");
    }
    let used = events(&api, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "cache_used")
        .unwrap();
    assert_eq!(used["payload"]["method"], "worker w1");
    assert_eq!(used["payload"]["built_at_commit"], start["base_commit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_the_cache_asks_nothing_and_one_that_cannot_keep_it_fails_the_task() {
    let api = api_on(repo_with_setup(), "[workers]\nlocal = false\n").await;
    let token = enrolled(&api, "w1").await;
    let id = task(&api).await;
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    let warm = next(&api, &token, holding.clone()).await;
    let key = warm["key"].as_str().unwrap().to_owned();
    let answer = format!("/api/v1/workers/tasks/{id}/warm");
    let had = json!({ "lease": lease, "key": key, "used": true, "entries": [".venv"], "files": 3 });
    let (status, _) = api.call("POST", &answer, Some(&token), Some(had)).await;
    assert_eq!(status, StatusCode::OK);
    let command = next(&api, &token, holding.clone()).await;
    assert_eq!(command["command_line"], "echo hi > A.md", "{command}");
    let kinds: Vec<Value> = events(&api, &id)
        .await
        .into_iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("cache_used")), "{kinds:?}");
    assert!(!kinds.contains(&json!("approval_requested")), "{kinds:?}");
    assert!(!kinds.contains(&json!("cache_built")), "{kinds:?}");
    // Cancelled, the run goes; a second task meets a worker that cannot
    // copy its cache: the task fails saying so.
    let (status, _) = api
        .authed("POST", &format!("/api/v1/tasks/{id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = task(&api).await;
    let mut start = next(&api, &token, holding.clone()).await;
    while start["kind"] != "start" {
        start = next(&api, &token, holding.clone()).await;
    }
    assert_eq!(start["task"], second.as_str(), "{start}");
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": second, "lease": lease });
    // The cancelled run's `done` may come first.
    let mut warm = next(&api, &token, holding.clone()).await;
    while warm["kind"] == "done" && warm["task"] != second.as_str() {
        warm = next(&api, &token, holding.clone()).await;
    }
    assert_eq!(warm["kind"], "warm", "{warm}");
    let broken = json!({
        "lease": lease, "key": warm["key"], "used": false,
        "error": "cannot copy the cache into the clone: No space left on device",
    });
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/workers/tasks/{second}/warm"),
            Some(&token),
            Some(broken),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let failed = state_until(&api, &second, "failed").await;
    let reason = failed["task"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the warm cache on worker w1") && reason.contains("No space left"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_changes_a_lock_file_on_a_worker_gets_the_setup_again_in_its_clone() {
    use base64::Engine;
    let model = pushpals_test_support::ScriptedModel::start(vec![
        pushpals_test_support::Reply::tool(
            "write_file",
            r#"{"path":"rust-toolchain","content":"1.2.0\n"}"#,
        ),
        pushpals_test_support::Reply::tool("finish", r#"{"summary":"bumped"}"#),
    ])
    .await;
    let repo = TempRepo::new();
    // A lock file that names no toolchain label (a worker offering none
    // takes the task).
    repo.write("rust-toolchain", "1.0.0\n");
    repo.write("pushpals.toml", "[setup]\ncommand = \"mkdir -p .venv\"\n");
    repo.commit_all("setup");
    let (api, token, id) =
        super::worker_mirror::agent_task_for_a_worker(repo, &model, "bump the version").await;
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    had_the_cache(&api, &token, &id, lease).await;
    // The agent changed rust-toolchain: the setup is asked for again, and
    // runs in the worker's clone, which gets the change first.
    let setup = setup_asked_again(&api, &token, &id, &holding).await;
    assert_eq!(setup["at_stable_path"], true);
    let diff = base64::engine::general_purpose::STANDARD
        .decode(setup["mirror"]["diff"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&diff).contains("+1.2.0"),
        "the clone gets the change before the setup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_changes_a_lock_file_on_a_worker_gets_the_setup_again_before_its_checks() {
    use base64::Engine;
    let repo = TempRepo::new();
    repo.write("rust-toolchain", "1.0.0\n");
    repo.write(
        "pushpals.toml",
        "[setup]\ncommand = \"mkdir -p .venv\"\n[checks]\ntest = \"true\"\n",
    );
    repo.commit_all("setup");
    let api = api_on(repo, "[workers]\nlocal = false\n").await;
    let token = enrolled(&api, "w1").await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "bump", "command": "printf '1.2.0\\n' > rust-toolchain" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    let (_temp, clone) = super::worker_runs::cloned_base(&api, &token, &start).await;
    had_the_cache(&api, &token, &id, lease).await;
    // The command changes the lock file there; its change comes back
    // before its end, so the setup is asked for again before the checks.
    let run = next(&api, &token, holding.clone()).await;
    assert_eq!(run["command_line"], "printf '1.2.0\\n' > rust-toolchain");
    let tree = super::worker_runs::send_change(&api, &token, &id, &run, &clone, |clone| {
        std::fs::write(clone.join("rust-toolchain"), "1.2.0\n").unwrap();
    })
    .await;
    let report =
        json!({ "lease": lease, "seq": run["seq"], "chunks": 0, "exit_code": 0, "tree": tree });
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/workers/tasks/{id}/result"),
            Some(&token),
            Some(report),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let setup = setup_asked_again(&api, &token, &id, &holding).await;
    // The clone already holds the change: nothing travels with it.
    assert_eq!(setup["mirror"]["tree"], tree.as_str(), "{setup}");
    assert!(setup["mirror"]["diff"].is_null(), "{setup}");

    // The worker restarts during the setup: offered again, the run does
    // only its checks (the command's change is in the worktree), and its
    // new clone gets the cache as built, so the setup is asked for again.
    let again = next(&api, &token, Value::Null).await;
    assert_eq!(again["kind"], "start", "{again}");
    let lease = again["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    had_the_cache(&api, &token, &id, lease).await;
    let setup = setup_asked_again(&api, &token, &id, &holding).await;
    // It brings the new clone to the worktree's files first.
    let diff = base64::engine::general_purpose::STANDARD
        .decode(setup["mirror"]["diff"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&diff).contains("+1.2.0"), "{setup}");
    let commands: Vec<String> = events(&api, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "command_started" && e["payload"]["step"] == "worker")
        .map(|e| e["payload"]["command"].to_string())
        .collect();
    assert_eq!(commands.len(), 1, "the command ran once: {commands:?}");
}

/// The worker has the warm cache the run of `id` under `lease` asks for.
async fn had_the_cache(api: &super::support::Api, token: &str, id: &str, lease: u64) {
    let warm = next(api, token, json!({ "task": id, "lease": lease })).await;
    let had = json!({ "lease": lease, "key": warm["key"], "used": true, "entries": [".venv"] });
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/workers/tasks/{id}/warm"),
            Some(token),
            Some(had),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Waits for the setup to be asked for again because task `id` changed
/// rust-toolchain on worker w1, approves it, and returns the setup's `run`
/// (in the worker's clone, not a build).
async fn setup_asked_again(
    api: &super::support::Api,
    token: &str,
    id: &str,
    holding: &Value,
) -> Value {
    let waiting = state_until(api, id, "waiting").await;
    // The newest approval is the one asked now.
    let asked = waiting["approvals"].as_array().unwrap().last().unwrap();
    let approval = asked["id"].as_i64().unwrap();
    let summary = asked["summary"].as_str().unwrap();
    assert!(summary.contains("changed rust-toolchain"), "{summary}");
    assert!(
        summary.contains("in its worktree on worker w1"),
        "{summary}"
    );
    let (status, _) = api
        .authed(
            "POST",
            &format!("/api/v1/approvals/{approval}/decide"),
            Some(json!({ "decision": "approve" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let setup = next(api, token, holding.clone()).await;
    assert_eq!(setup["command_line"], "mkdir -p .venv", "{setup}");
    assert!(setup["in_build"].is_null(), "in the clone: {setup}");
    setup
}
