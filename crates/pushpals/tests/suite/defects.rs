//! Defects found by using the command line as a new user would: paths
//! relative to where it started, exit codes, `--json` everywhere, pipes
//! closed early.

use super::support::*;
use pushpals_test_support::TempRepo;

#[test]
fn a_relative_data_dir_works_for_every_task() {
    let repo = TempRepo::new();
    let cwd = tempfile::tempdir().unwrap();
    let server = start_server_in(&repo.path, cwd.path(), "d1");
    let (_id, view) = server.task_until("Relative", "echo hi > hi.txt", "awaiting_approval");
    let worktree = view["task"]["worktree_path"].as_str().unwrap();
    assert!(std::path::Path::new(worktree).is_absolute(), "{worktree}");
    assert!(worktree.starts_with(cwd.path().join("d1").to_str().unwrap()));
}

#[test]
fn following_a_task_that_fails_exits_with_a_failure() {
    let (_repo, _data, server) = served();
    let task = server.json(&["task", "Fails", "--run", "echo trying; false"]);
    let id = task["id"].as_str().unwrap();
    let followed = server.cli().args(["log", id, "--follow"]).output().unwrap();
    assert_eq!(followed.status.code(), Some(1), "{followed:?}");
    // And a task that waits for its commit approval is a success.
    let ok = server.json(&["task", "Works", "--run", "echo ok > ok.txt"]);
    let ok_id = ok["id"].as_str().unwrap();
    let followed = server
        .cli()
        .args(["log", ok_id, "--follow"])
        .output()
        .unwrap();
    assert_eq!(followed.status.code(), Some(0), "{followed:?}");
}

#[test]
fn cancel_continue_and_rm_answer_in_json() {
    let (_repo, _data, server) = served();
    let (id, _) = server.task_until("Slow", "sleep 60", "running");
    let cancelled = server.json(&["cancel", &id]);
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    let continued = server.json(&["continue", &id, "--run", "echo again > a.txt"]);
    assert_eq!(continued["id"], id.as_str(), "{continued}");
    server.wait_for_state(&id, "awaiting_approval");
    server.json(&["cancel", &id]);
    let removed = server.json(&["task", "rm", &id]);
    assert_eq!(removed["id"], id.as_str(), "{removed}");
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let (_repo, _data, server) = served();
    let (id, _) = server.task_until(
        "Chatty",
        "seq 1 20000 > n.txt; seq 1 20000",
        "awaiting_approval",
    );
    for args in [
        format!("log {id} --json"),
        format!("log {id}"),
        "pair".to_owned(),
    ] {
        let output = std::process::Command::new("bash")
            .args([
                "-c",
                &format!("'{BIN}' {args} | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}"),
            ])
            .env("PUSHPALS_URL", &server.url)
            .env("PUSHPALS_DATA_DIR", &server.data_dir)
            .env_remove("PUSHPALS_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args}: {stderr}"
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "0",
            "{args}: {stderr}"
        );
    }
}

#[test]
fn a_task_can_be_named_by_its_number_wherever_an_id_is_taken() {
    let (_repo, _data, server) = served();
    let (id, _) = server.task_until("Numbered", "echo n > n.txt", "awaiting_approval");
    assert_eq!(server.json(&["status", "1"])["task"]["id"], id.as_str());
    assert_eq!(server.json(&["status", "#1"])["task"]["id"], id.as_str());
    let log = server.cli().args(["log", "1"]).output().unwrap();
    assert!(log.status.success(), "{log:?}");
    assert!(String::from_utf8_lossy(&log.stdout).contains("echo n > n.txt"));
    let diff = server.json(&["diff", "1"]);
    assert!(diff["diff"].as_str().unwrap().contains("+n"));
    let approved = server.cli().args(["approve", "1"]).output().unwrap();
    assert!(approved.status.success(), "{approved:?}");
    assert_eq!(server.json(&["status", &id])["task"]["state"], "committed");
    let missing = server.cli().args(["status", "99"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no task numbered 99"),
        "{missing:?}"
    );
}

#[test]
fn the_working_directory_is_not_taken_for_a_secret() {
    let (_repo, _data, server) = served();
    let (id, view) = server.task_until(
        "Where",
        "echo \"PWD=$PWD\" | tee where.txt",
        "awaiting_approval",
    );
    let worktree = view["task"]["worktree_path"].as_str().unwrap().to_owned();
    let log = server.cli().args(["log", &id]).output().unwrap();
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.contains(&format!("PWD={worktree}")), "{text}");
    let approved = server.cli().args(["approve", &id]).output().unwrap();
    assert!(approved.status.success(), "{approved:?}");
    assert_eq!(server.json(&["status", &id])["task"]["state"], "committed");
}

#[test]
fn status_shows_time_at_work_and_what_each_task_waits_for_and_diff_shows_the_message() {
    let repo = TempRepo::new();
    let remote = tempfile::tempdir().unwrap();
    pushpals_test_support::git_in(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let (done_id, _) = server.task_until("Edit", "echo e > e.txt", "awaiting_approval");
    let diff = server.cli().args(["diff", &done_id]).output().unwrap();
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff.starts_with("Proposed commit message:\n    Edit\n"),
        "{diff}"
    );
    assert!(diff.contains("+e"), "{diff}");
    assert!(
        server
            .cli()
            .args(["approve", &done_id])
            .output()
            .unwrap()
            .status
            .success()
    );
    let (busy_id, _) = server.task_until("Busy", "sleep 30", "running");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let table = server.cli().arg("status").output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(table.starts_with("   # TASK"), "{table}");
    assert!(
        line(&done_id).contains(" push "),
        "the push it waits for: {table}"
    );
    let busy_line = line(&busy_id);
    assert!(
        busy_line.contains("running")
            && busy_line.split_whitespace().any(|w| w.ends_with('s')
                && w[..w.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == 'm')),
        "the time it has been running: {table}"
    );
    server.cli().args(["cancel", &busy_id]).output().unwrap();
}

#[test]
fn chat_answers_questions_without_a_question_mark_and_starts_no_work() {
    let (_repo, _data, server) = served();
    let (id, _) = server.task_until("Numbered", "echo n > n.txt", "awaiting_approval");
    for message in [
        "how is #1",
        &format!("how is {id}"),
        "what is the status of 1",
    ] {
        let reply = server.json(&["chat", message]);
        assert_eq!(reply["intent"], "question", "{message}: {reply}");
        let text = reply["reply"].as_str().unwrap();
        assert!(text.contains("Numbered"), "{message}: {text}");
    }
    // No plan was made and no task started.
    let tasks = server.json(&["status"]);
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1, "{tasks}");
}

#[test]
fn settings_changed_while_serving_are_taken_and_what_needs_a_restart_is_named() {
    let (_repo, data, server) = served();
    let agent_task = |title: &str| {
        server
            .cli()
            .args(["task", title, "--agent", "Add a bar module"])
            .output()
            .unwrap()
    };
    let refused = agent_task("Before");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not define"),
        "{refused:?}"
    );
    write_config(
        data.path(),
        "[models.strong]\nprotocol = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [sandbox]\nbackend = \"none\"\n",
    );
    let reload = server.json(&["reload"]);
    assert!(
        reload["applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "models"),
        "{reload}"
    );
    assert!(
        reload["restart_needed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "sandbox"),
        "{reload}"
    );
    // Reloading again applies nothing new; the sandbox still waits for a
    // restart.
    let text = server.cli().arg("reload").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(!text.contains("In force now"), "{text}");
    assert!(
        text.contains("needs a restart of `pushpals serve`: sandbox"),
        "{text}"
    );
    let accepted = agent_task("After");
    assert!(accepted.status.success(), "{accepted:?}");
    // The sandbox the server runs with is still the one it started with.
    let task = server.json(&["task", "Still sandboxed", "--run", "true"]);
    let id = task["id"].as_str().unwrap();
    let events = server.events(id);
    let started = events.iter().find(|e| e["kind"] == "command_started");
    if let Some(started) = started {
        assert_eq!(started["payload"]["backend"], "bubblewrap", "{started}");
    }

    // Without `reload`, the server notices the file changed by itself.
    write_config(data.path(), "");
    let mut refused_again = false;
    for _ in 0..50 {
        if !agent_task("Later").status.success() {
            refused_again = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        refused_again,
        "the server never took the changed config.toml"
    );
}

#[test]
fn task_wait_shows_progress_and_ends_with_the_tasks_outcome() {
    let (_repo, _data, server) = served();
    let waited = server
        .cli()
        .args([
            "task",
            "Slow build",
            "--run",
            "for i in 1 2 3; do echo compiling step $i; sleep 1; done; echo built > out.txt",
            "--wait",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&waited.stdout);
    assert_eq!(waited.status.code(), Some(0), "{text}");
    assert!(text.contains("[running"), "{text}");
    assert!(
        text.contains("compiling step"),
        "the latest output is shown: {text}"
    );
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("[awaiting_approval]"),
        "{text}"
    );
    let failed = server
        .cli()
        .args(["task", "Broken", "--run", "echo nope; exit 3", "--wait"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
}
