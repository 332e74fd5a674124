//! A worker at work over the API, played by the test: it takes a run, its
//! base, and each command; sends output, changes and ends; and every
//! wrong step is refused with what to do: another lease, another task, a
//! chunk out of order, a report before its output, a stream that is not
//! one, a chunk too big, a worker that says it holds nothing.
//!
//! Over 400 lines: one worker's conversation with the server, step after
//! step, each refusal tried at the step it belongs to.

use super::support::{Api, api_with};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Names and enrols worker `name`; its token.
pub(super) async fn enrolled(api: &Api, name: &str) -> String {
    let (status, added) = api
        .authed(
            "POST",
            "/api/v1/workers",
            Some(json!({ "name": name, "labels": [] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let body = json!({
        "token": added["enrolment_token"],
        "cores": 2,
        "version": VERSION,
        "time": pushpals_core::timestamp::now(),
    });
    let (status, enrolled) = api
        .call("POST", "/api/v1/workers/enrol", None, Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    enrolled["token"].as_str().unwrap().to_owned()
}

/// Asks for the next instruction (saying what it holds: nothing, a run,
/// or a list of runs) until one comes.
pub(super) async fn next(api: &Api, token: &str, holding: Value) -> Value {
    next_offering(api, token, holding, &json!([])).await
}

/// The next instruction for a worker holding `holding` (one run, a list,
/// or none) and offering the external agents `agents`.
pub(super) async fn next_offering(api: &Api, token: &str, holding: Value, agents: &Value) -> Value {
    let holding = match holding {
        Value::Null => json!([]),
        Value::Array(_) => holding,
        one => json!([one]),
    };
    for _ in 0..5 {
        let (status, instruction) = api
            .call(
                "POST",
                "/api/v1/workers/next",
                Some(token),
                Some(json!({ "holding": holding, "agents": agents })),
            )
            .await;
        if status == StatusCode::OK {
            return instruction;
        }
        assert_eq!(status, StatusCode::NO_CONTENT, "{instruction}");
    }
    panic!("no instruction came");
}

async fn create(api: &Api, command: &str) -> String {
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "on a worker", "command": command })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    task["id"].as_str().unwrap().to_owned()
}

pub(super) async fn state_until(api: &Api, id: &str, wanted: &str) -> Value {
    for _ in 0..1000 {
        let (_, view) = api
            .authed("GET", &format!("/api/v1/tasks/{id}"), None)
            .await;
        if view["task"]["state"] == wanted {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never became {wanted}");
}

pub(super) async fn events(api: &Api, id: &str) -> Vec<Value> {
    let (_, view) = api
        .authed("GET", &format!("/api/v1/tasks/{id}/events"), None)
        .await;
    view["events"].as_array().cloned().unwrap_or_default()
}

/// The run's base cloned as a worker clones it (in the directory
/// returned with it), from its `start` instruction.
pub(super) async fn cloned_base(
    api: &Api,
    token: &str,
    start: &Value,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let (id, lease) = (
        start["task"].as_str().unwrap(),
        start["lease"].as_u64().unwrap(),
    );
    let (status, bundle) = api
        .call_bytes(
            "GET",
            &format!("/api/v1/workers/tasks/{id}/base?lease={lease}"),
            token,
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let temp = tempfile::tempdir().unwrap();
    let bundle_file = temp.path().join("base.bundle");
    std::fs::write(&bundle_file, bundle).unwrap();
    let clone = temp.path().join("clone");
    pushpals_workspace::clone_bundle(&bundle_file, &clone, start["base_commit"].as_str().unwrap())
        .await
        .unwrap();
    (temp, clone)
}

/// Plays the command `run` (a `run` instruction of task `id`) changing
/// `clone` with `edit`: the clone is brought to the run's files first, and
/// what the edit changed is sent; the clone's tree, for the command's
/// report.
pub(super) async fn send_change(
    api: &Api,
    token: &str,
    id: &str,
    run: &Value,
    clone: &std::path::Path,
    edit: impl FnOnce(&std::path::Path),
) -> String {
    use base64::Engine;
    if let Some(diff) = run["mirror"]["diff"].as_str() {
        let diff = base64::engine::general_purpose::STANDARD
            .decode(diff)
            .unwrap();
        pushpals_workspace::apply_to_clone(clone, &diff)
            .await
            .unwrap();
    }
    let from = run["mirror"]["tree"].as_str().unwrap().to_owned();
    assert_eq!(pushpals_workspace::clone_tree(clone).await.unwrap(), from);
    edit(clone);
    let after = pushpals_workspace::clone_tree(clone).await.unwrap();
    let diff = pushpals_workspace::clone_tree_diff(clone, &from, &after)
        .await
        .unwrap();
    let put = format!(
        "/api/v1/workers/tasks/{id}/diff?lease={}&seq={}",
        run["lease"], run["seq"]
    );
    let (status, _) = api.call_bytes("PUT", &put, token, diff).await;
    assert_eq!(status, StatusCode::OK);
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_takes_a_run_step_by_step_and_every_wrong_step_is_refused() {
    let api = api_with("[workers]\nlocal = false\nsilence_secs = 5\n").await;

    // No worker offers anything yet: the task fails saying how to add one.
    let orphan = create(&api, "true").await;
    let failed = state_until(&api, &orphan, "failed").await;
    let reason = failed["task"]["reason"].as_str().unwrap();
    assert!(reason.contains("pushpals worker token"), "{reason}");

    let token = enrolled(&api, "w1").await;
    // Only a worker asks for work.
    let (status, said) = api
        .authed("POST", "/api/v1/workers/next", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(said["message"].as_str().unwrap().contains("only a worker"));

    let id = create(&api, "echo hi > A.md").await;
    // Before the worker asks, the task waits for one, and says so.
    let mut said = String::new();
    for _ in 0..500 {
        let (_, status) = api.authed("GET", "/api/v1/status", None).await;
        said = status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .and_then(|t| t["summary"].as_str())
            .unwrap_or_default()
            .to_owned();
        if said.contains("waiting for a worker") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(said.contains("waiting for a worker"), "{said}");
    let start = next(&api, &token, Value::Null).await;
    assert_eq!(start["kind"], "start", "{start}");
    assert_eq!(start["task"], id.as_str());
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });

    // The base: only under this lease, only for this task.
    let base = |task: &str, lease: u64| format!("/api/v1/workers/tasks/{task}/base?lease={lease}");
    let (status, _) = api
        .call_bytes("GET", &base(&id, lease + 1), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .call_bytes("GET", &base("task-nope", 0), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, bundle) = api
        .call_bytes("GET", &base(&id, lease), &token, vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(bundle.starts_with(b"# v2 git bundle") || bundle.starts_with(b"# v3 git bundle"));

    let run = next(&api, &token, holding.clone()).await;
    assert_eq!(run["kind"], "run", "{run}");
    assert_eq!(run["command_line"], "echo hi > A.md");
    // The status says where it runs.
    let (_, status) = api.authed("GET", "/api/v1/status", None).await;
    let shown = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(shown["worker"], "w1", "{shown}");
    // Not granted network, the command has no tunnel to the proxy.
    assert_eq!(run["network"], false);
    let (status, refused) = api
        .call(
            "GET",
            &format!(
                "/api/v1/workers/tasks/{id}/network?lease={lease}&seq={}",
                run["seq"]
            ),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not running with network")
    );
    assert!(
        shown["summary"].as_str().unwrap().contains("on worker w1"),
        "{shown}"
    );
    let seq = run["seq"].as_u64().unwrap();
    let output = |chunk: u64, stream: &str| {
        format!(
            "/api/v1/workers/tasks/{id}/output?lease={lease}&seq={seq}&chunk={chunk}&stream={stream}"
        )
    };
    let (status, said) = api
        .call_bytes("POST", &output(1, "stdout"), &token, b"late".to_vec())
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&said)
    );
    assert!(String::from_utf8_lossy(&said).contains("chunk 0"));
    let (status, _) = api
        .call_bytes("POST", &output(0, "stdin"), &token, b"x".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call_bytes(
            "POST",
            &output(0, "stdout"),
            &token,
            vec![b'x'; (1 << 20) + 1],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    for _ in 0..2 {
        // Sent twice (a retry), taken once.
        let (status, _) = api
            .call_bytes("POST", &output(0, "stdout"), &token, b"hi\n".to_vec())
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // The command's change goes first, under its lease; then its end,
    // naming the clone's tree after it.
    let (_temp, clone) = cloned_base(&api, &token, &start).await;
    let (status, _) = api
        .call_bytes(
            "PUT",
            &format!(
                "/api/v1/workers/tasks/{id}/diff?lease={}&seq={seq}",
                lease + 7
            ),
            &token,
            b"diff".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let tree = send_change(&api, &token, &id, &run, &clone, |clone| {
        std::fs::write(clone.join("A.md"), "hi\n").unwrap();
    })
    .await;
    let report = |chunks: u64| json!({ "lease": lease, "seq": seq, "chunks": chunks, "exit_code": 0, "duration_ms": 5, "tree": tree });
    let result = format!("/api/v1/workers/tasks/{id}/result");
    let (status, early) = api
        .call("POST", &result, Some(&token), Some(report(2)))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{early}");
    for _ in 0..2 {
        let (status, taken) = api
            .call("POST", &result, Some(&token), Some(report(1)))
            .await;
        assert_eq!(status, StatusCode::OK, "{taken}");
    }

    let done = next(&api, &token, holding.clone()).await;
    assert_eq!(done["kind"], "done", "{done}");
    let view = state_until(&api, &id, "awaiting_approval").await;
    let worktree = view["task"]["worktree_path"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(worktree).join("A.md")).unwrap(),
        "hi\n"
    );
    let all = events(&api, &id).await;
    let outputs: Vec<&Value> = all.iter().filter(|e| e["kind"] == "output").collect();
    assert_eq!(outputs.len(), 1, "{all:?}");
    assert_eq!(outputs[0]["payload"]["text"], "hi\n");
    assert!(
        all.iter()
            .any(|e| e["kind"] == "task_placed" && e["payload"]["worker"] == "w1")
    );
    // A run that ended takes no more reports.
    let (status, _) = api
        .call("POST", &result, Some(&token), Some(report(1)))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A worker that says it holds nothing (it restarted) loses its run at
    // once; the task is offered again under a new lease.
    let again = create(&api, "true").await;
    let first = next(&api, &token, Value::Null).await;
    assert_eq!(first["kind"], "start");
    let second = next(&api, &token, Value::Null).await;
    assert_eq!(second["kind"], "start", "{second}");
    assert_eq!(second["task"], again.as_str());
    assert_ne!(second["lease"], first["lease"]);
    let (status, over) = api
        .call_bytes(
            "GET",
            &base(&again, first["lease"].as_u64().unwrap()),
            &token,
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&over).contains("no longer this worker's"));
    let lost: Vec<Value> = events(&api, &again)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "worker_lost")
        .collect();
    assert_eq!(lost.len(), 1);
    assert!(
        lost[0]["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("no longer holds")
    );

    // Cancelled while its command runs there: the worker is told it is
    // done (which stops the command), and the task is cancelled.
    let second_lease = second["lease"].as_u64().unwrap();
    let second_holding = json!({ "task": again, "lease": second_lease });
    let run = next(&api, &token, second_holding.clone()).await;
    assert_eq!(run["kind"], "run", "{run}");
    let report = json!({ "lease": second_lease, "seq": run["seq"], "chunks": 0, "exit_code": 0 });
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/workers/tasks/{again}/result"),
            Some(&token),
            Some(report),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // It changed nothing: its end names no tree, and nothing comes back.
    assert_eq!(next(&api, &token, second_holding).await["kind"], "done");
    state_until(&api, &again, "no_changes").await;
    let cancelled = create(&api, "sleep 100").await;
    let start = next(&api, &token, Value::Null).await;
    assert_eq!(start["task"], cancelled.as_str(), "{start}");
    let holding = json!({ "task": cancelled, "lease": start["lease"] });
    let run = next(&api, &token, holding.clone()).await;
    assert_eq!(run["kind"], "run", "{run}");
    let (status, _) = api
        .authed("POST", &format!("/api/v1/tasks/{cancelled}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let done = next(&api, &token, holding.clone()).await;
    assert_eq!(done["kind"], "done", "{done}");
    state_until(&api, &cancelled, "cancelled").await;
    // A worker that still says it holds a run that is over (it missed the
    // word, or the server restarted) is told again to drop it.
    let again_done = next(&api, &token, holding).await;
    assert_eq!(again_done["kind"], "done", "{again_done}");
    assert_eq!(again_done["lease"], start["lease"]);

    // Revoked while it holds a run: the run is lost, and with no other
    // worker to offer it to, the task fails saying so.
    let orphaned = create(&api, "true").await;
    let start = next(&api, &token, Value::Null).await;
    assert_eq!(start["task"], orphaned.as_str(), "{start}");
    let (status, _) = api.authed("DELETE", "/api/v1/workers/w1", None).await;
    assert_eq!(status, StatusCode::OK);
    let failed = state_until(&api, &orphaned, "failed").await;
    assert!(
        failed["task"]["reason"]
            .as_str()
            .unwrap()
            .contains("no worker offers"),
        "{failed}"
    );
    let lost: Vec<Value> = events(&api, &orphaned)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "worker_lost")
        .collect();
    assert!(
        lost[0]["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{lost:?}"
    );

    // A worker that runs two at once takes a second run while it holds the
    // first; the list shows both.
    let token = enrolled(&api, "w2").await;
    let mut want = vec![create(&api, "sleep 5").await, create(&api, "sleep 5").await];
    let (mut started, mut holding) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let (status, instruction) = api
            .call(
                "POST",
                "/api/v1/workers/next",
                Some(&token),
                Some(json!({ "holding": holding, "slots": 2 })),
            )
            .await;
        if status == StatusCode::OK && instruction["kind"] == "start" {
            holding.push(json!({ "task": instruction["task"], "lease": instruction["lease"] }));
            started.push(instruction["task"].as_str().unwrap().to_owned());
        }
        if started.len() == 2 {
            break;
        }
    }
    started.sort();
    want.sort();
    assert_eq!(started, want);
    let (_, listed) = api.authed("GET", "/api/v1/workers", None).await;
    let w2 = listed["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "w2")
        .unwrap()
        .clone();
    assert_eq!(w2["running"].as_array().unwrap().len(), 2, "{w2}");
}
