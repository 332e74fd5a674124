//! The built-in agent's task on a worker, played by the test: the agent
//! edits files in the server's worktree, its commands run in the worker's
//! clone, and each command starts from the agent's files and sends back
//! what it changed; a change that comes without its diff, or that does not
//! fit, is refused and fails the command rather than letting the two
//! copies drift apart.

use super::support::{Api, api_on};
use super::worker_runs::{cloned_base, enrolled, events, next, state_until};
use axum::http::StatusCode;
use base64::Engine;
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::{Value, json};

/// A server on `repo` with no local runs and the scripted model as the
/// built-in agent's, a worker `w1` enrolled (its token), and an agent task
/// with `prompt` (its id).
pub(super) async fn agent_task_for_a_worker(
    repo: pushpals_test_support::TempRepo,
    model: &ScriptedModel,
    prompt: &str,
) -> (Api, String, String) {
    let api = api_on(
        repo,
        &format!(
            "[workers]\nlocal = false\n[models.strong]\nprotocol = \"openai\"\nbase_url = \
             \"{}\"\nmodel = \"m\"\nmax_retries = 0\n",
            model.openai_base()
        ),
    )
    .await;
    let token = enrolled(&api, "w1").await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "agent", "agent": { "prompt": prompt } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    (api, token, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_commands_run_on_a_worker_with_its_files_mirrored_both_ways() {
    let model = ScriptedModel::start(vec![
        Reply::tool(
            "write_file",
            r#"{"path":"notes.txt","content":"from the agent\n"}"#,
        ),
        Reply::tool("run_command", r#"{"command":"cat notes.txt"}"#),
        Reply::tool("read_file", r#"{"path":"made.txt"}"#),
        Reply::tool("run_command", r#"{"command":"ls"}"#),
        Reply::tool("finish", r#"{"summary":"never reached"}"#),
    ])
    .await;
    let (api, token, id) = agent_task_for_a_worker(
        pushpals_test_support::TempRepo::new(),
        &model,
        "write notes",
    )
    .await;

    // The worker takes the run and clones its base.
    let start = next(&api, &token, Value::Null).await;
    assert_eq!(start["kind"], "start", "{start}");
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!({ "task": id, "lease": lease });
    let (_temp, clone) = cloned_base(&api, &token, &start).await;

    // The first command starts from the agent's edit.
    let run = next(&api, &token, holding.clone()).await;
    assert_eq!(run["kind"], "run", "{run}");
    assert_eq!(run["command_line"], "cat notes.txt");
    let seq = run["seq"].as_u64().unwrap();
    let diff = base64::engine::general_purpose::STANDARD
        .decode(run["mirror"]["diff"].as_str().unwrap())
        .unwrap();
    pushpals_workspace::apply_to_clone(&clone, &diff)
        .await
        .unwrap();
    let tree = run["mirror"]["tree"].as_str().unwrap().to_owned();
    assert_eq!(pushpals_workspace::clone_tree(&clone).await.unwrap(), tree);
    assert_eq!(
        std::fs::read_to_string(clone.join("notes.txt")).unwrap(),
        "from the agent\n"
    );

    // The command makes a file; its end names the clone's new tree, and
    // is refused until the diff to it came.
    std::fs::write(clone.join("made.txt"), "by the worker\n").unwrap();
    let after = pushpals_workspace::clone_tree(&clone).await.unwrap();
    let changes = pushpals_workspace::clone_tree_diff(&clone, &tree, &after)
        .await
        .unwrap();
    let report = json!({ "lease": lease, "seq": seq, "chunks": 0, "exit_code": 0, "tree": after });
    let result = format!("/api/v1/workers/tasks/{id}/result");
    let (status, refused) = api
        .call("POST", &result, Some(&token), Some(report.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains(&format!("send what command {seq} changed")),
        "{refused}"
    );
    let put = format!("/api/v1/workers/tasks/{id}/diff?lease={lease}&seq={seq}");
    for _ in 0..2 {
        let (status, _) = api.call_bytes("PUT", &put, &token, changes.clone()).await;
        assert_eq!(status, StatusCode::OK, "the diff is taken, and taken once");
    }
    let (status, _) = api
        .call_bytes(
            "PUT",
            &format!("/api/v1/workers/tasks/{id}/diff?lease={lease}&seq=99"),
            &token,
            changes.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no command 99 runs");
    let (status, taken) = api.call("POST", &result, Some(&token), Some(report)).await;
    assert_eq!(status, StatusCode::OK, "{taken}");

    // The next command starts where the last ended: nothing to apply.
    let run = next(&api, &token, holding.clone()).await;
    assert_eq!(run["command_line"], "ls", "{run}");
    assert_eq!(run["mirror"]["tree"], after.as_str());
    assert!(run["mirror"]["diff"].is_null(), "{run}");
    // The agent read the file the command made, in the server's worktree.
    let read_back = model
        .requests()
        .iter()
        .any(|r| r.body.to_string().contains("by the worker"));
    assert!(read_back, "the agent saw what the worker's command made");
    let (_, view) = api
        .authed("GET", &format!("/api/v1/tasks/{id}"), None)
        .await;
    let worktree = std::path::PathBuf::from(view["task"]["worktree_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(worktree.join("made.txt")).unwrap(),
        "by the worker\n"
    );

    // A change that does not fit the server's files fails the command, and
    // the worktree is left as it was.
    let seq = run["seq"].as_u64().unwrap();
    let misfit = b"diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-not what it says\n+changed\n".to_vec();
    let put = format!("/api/v1/workers/tasks/{id}/diff?lease={lease}&seq={seq}");
    let (status, _) = api.call_bytes("PUT", &put, &token, misfit).await;
    assert_eq!(status, StatusCode::OK);
    let report =
        json!({ "lease": lease, "seq": seq, "chunks": 0, "exit_code": 0, "tree": "0".repeat(40) });
    let (status, _) = api.call("POST", &result, Some(&token), Some(report)).await;
    assert_eq!(status, StatusCode::OK);
    let failed = state_until(&api, &id, "failed").await;
    let reason = failed["task"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("do not apply"), "{failed}");
    assert!(reason.contains("could not be kept the same"), "{failed}");
    assert_eq!(
        std::fs::read_to_string(worktree.join("notes.txt")).unwrap(),
        "from the agent\n"
    );
    // Every command the agent ran is in the log, on the worker.
    let placed = events(&api, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "task_placed")
        .count();
    assert_eq!(placed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_run_whose_worker_is_lost_is_offered_again_with_its_edits() {
    let model = ScriptedModel::start(vec![
        Reply::tool("write_file", r#"{"path":"notes.txt","content":"kept\n"}"#),
        Reply::tool("run_command", r#"{"command":"ls"}"#),
        Reply::tool("run_command", r#"{"command":"ls"}"#),
    ])
    .await;
    let (api, token, id) = agent_task_for_a_worker(
        pushpals_test_support::TempRepo::new(),
        &model,
        "write notes",
    )
    .await;
    let start = next(&api, &token, Value::Null).await;
    let lease = start["lease"].as_u64().unwrap();
    let run = next(&api, &token, json!({ "task": id, "lease": lease })).await;
    assert_eq!(run["kind"], "run", "{run}");
    // The worker restarted: it holds nothing. The run is lost, and offered
    // again rather than failed; the agent's edit is still in the worktree,
    // so the next run's first command starts from it.
    let again = next(&api, &token, Value::Null).await;
    assert_eq!(again["kind"], "start", "{again}");
    let new_lease = again["lease"].as_u64().unwrap();
    assert_ne!(new_lease, lease);
    let kinds: Vec<Value> = events(&api, &id)
        .await
        .into_iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("worker_lost")), "{kinds:?}");
    assert!(!kinds.contains(&json!("failure")), "{kinds:?}");
    let run = next(&api, &token, json!({ "task": id, "lease": new_lease })).await;
    assert_eq!(run["kind"], "run", "{run}");
    let diff = base64::engine::general_purpose::STANDARD
        .decode(run["mirror"]["diff"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&diff).contains("+kept"),
        "the new clone gets the edit"
    );
}
