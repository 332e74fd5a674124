//! Following a task live, cancelling and removing it, and the policy gate
//! seen from the command line.

use super::support::*;
use pushpals_test_support::TempRepo;
use serde_json::Value;
use std::time::Duration;

#[test]
fn log_follow_streams_a_running_task_until_it_waits_and_cancel_and_rm_clean_up() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let task = server.json(&[
        "task",
        "Say hello",
        "--run",
        "sleep 0.5; echo hello from the task; sleep 0.5; echo more > f.txt",
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    let followed = server
        .cli()
        .args(["log", &id, "--follow"])
        .output()
        .unwrap();
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let text = String::from_utf8(followed.stdout).unwrap();
    assert!(text.contains("hello from the task\n"), "{text}");
    assert!(
        text.trim_end().ends_with("checking → awaiting_approval"),
        "{text}"
    );

    let slow = server.json(&["task", "Slow", "--run", "sleep 60"]);
    let slow_id = slow["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&slow_id, "running");
    let cancelled = server.cli().args(["cancel", &slow_id]).output().unwrap();
    assert!(cancelled.status.success());
    assert_eq!(
        server.json(&["status", &slow_id])["task"]["state"],
        "cancelled"
    );
    let removed = server
        .cli()
        .args(["task", "rm", &slow_id])
        .output()
        .unwrap();
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(
        repo.git(&["branch", "--list", &format!("pushpals/{slow_id}")])
            .is_empty()
    );

    // Commands run in the sandbox.
    let started: Vec<Value> = server
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "command_started")
        .collect();
    assert_eq!(
        started[0]["payload"]["backend"], "bubblewrap",
        "{started:?}"
    );

    // A command no rule covers waits for the person; approving it runs it.
    let asked = server.json(&[
        "task",
        "Unknown tool",
        "--run",
        "frobnicate || echo fallback > f.txt",
    ]);
    let asked_id = asked["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state(&asked_id, "waiting");
    assert_eq!(view["approvals"][0]["action"], "command");
    let followed = server
        .cli()
        .args(["log", &asked_id, "--follow"])
        .output()
        .unwrap();
    let text = String::from_utf8(followed.stdout).unwrap();
    assert!(text.contains("policy: ask"), "{text}");
    let approved = server.cli().args(["approve", &asked_id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    server.wait_for_state(&asked_id, "awaiting_approval");
    assert!(
        server.json(&["diff", &asked_id])["diff"]
            .as_str()
            .unwrap()
            .contains("+fallback")
    );

    // --approve-run approves it in the same gesture; a denied command still never runs.
    let preapproved = server.json(&[
        "task",
        "Pre",
        "--run",
        "frobnicate || echo pre > g.txt",
        "--approve-run",
    ]);
    server.wait_for_state(preapproved["id"].as_str().unwrap(), "awaiting_approval");
    let denied = server.json(&["task", "Push", "--run", "git push", "--approve-run"]);
    let denied_id = denied["id"].as_str().unwrap();
    for _ in 0..200 {
        if server.json(&["status", denied_id])["task"]["state"] == "failed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let view = server.json(&["status", denied_id]);
    assert_eq!(view["task"]["state"], "failed");
    assert!(
        view["task"]["reason"]
            .as_str()
            .unwrap()
            .contains("policy denies"),
        "{view}"
    );

    // A task that is still waiting cannot be removed.
    let refused = server.cli().args(["task", "rm", &id]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("HTTP 409"));
}
