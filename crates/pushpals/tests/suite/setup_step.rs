//! The setup step's course on a repository of the test's own: asked once,
//! built once while a second task waits for it, a failing setup cached
//! never, and what each task sees recorded when it is created.

use super::support::*;
use std::time::Duration;

fn kinds(server: &Server, task: &str, kind: &str) -> usize {
    server
        .events(task)
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

#[test]
fn two_tasks_share_one_setup_and_a_failing_setup_is_never_cached() {
    let repo = pushpals_test_support::TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[setup]\ncommand = \"mkdir -p .deps && echo v1 > .deps/marker\"\n\
         [checks]\ntest = \"grep -q v1 .deps/marker\"\n",
    );
    repo.write(".gitignore", ".deps/\n");
    repo.commit_all("setup");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());

    // Two tasks at once: one asks for the setup, the other waits for it.
    let first = server.json(&["task", "One", "--run", "echo one >> a.txt"]);
    let first = first["id"].as_str().unwrap().to_owned();
    let second = server.json(&["task", "Two", "--run", "echo two >> b.txt"]);
    let second = second["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let asking = loop {
        let waiting: Vec<&String> = [&first, &second]
            .into_iter()
            .filter(|id| server.json(&["status", id])["task"]["state"] == "waiting")
            .collect();
        if let Some(id) = waiting.first() {
            std::thread::sleep(Duration::from_millis(500));
            break (*id).clone();
        }
        assert!(std::time::Instant::now() < deadline, "no setup approval");
        std::thread::sleep(Duration::from_millis(50));
    };
    let other = if asking == first { &second } else { &first };
    assert_eq!(
        server.json(&["status", other])["task"]["state"],
        "running",
        "the other task should wait for the setup, not ask again"
    );
    server.json(&["approve", &asking]);
    for id in [&first, &second] {
        server.wait_for_state(id, "awaiting_approval");
        assert_eq!(kinds(&server, id, "cache_used"), 1, "{id}");
        let view = server.json(&["status", id]);
        let worktree = std::path::Path::new(view["task"]["worktree_path"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(worktree.join(".deps/marker")).unwrap(),
            "v1\n"
        );
    }
    let built = kinds(&server, &first, "cache_built") + kinds(&server, &second, "cache_built");
    assert_eq!(built, 1, "the setup ran more than once");
    let asked = kinds(&server, &first, "approval_requested")
        + kinds(&server, &second, "approval_requested");
    assert_eq!(asked, 3, "one setup approval and two commit approvals");

    // What the task saw is in its task_created event.
    let created = server
        .events(&first)
        .into_iter()
        .find(|e| e["kind"] == "task_created")
        .unwrap();
    let sandbox = &created["payload"]["sandbox"];
    assert_eq!(sandbox["backend"], "bubblewrap", "{created}");
    assert!(
        sandbox["stable_path"]
            .as_str()
            .unwrap()
            .starts_with("/workspace/"),
        "{created}"
    );
    assert!(sandbox["toolchains"].is_array(), "{created}");

    // A setup that fails: the task says so with its output, and nothing
    // is kept for the next task.
    repo.write(
        "pushpals.toml",
        "[setup]\ncommand = \"echo cannot resolve deps >&2; exit 3\"\n\
         [checks]\ntest = \"true\"\n",
    );
    repo.commit_all("broken setup");
    let caches_before = std::fs::read_dir(super::caches_dir(data.path()))
        .unwrap()
        .count();
    let failing = server.json(&["task", "Three", "--run", "echo three >> c.txt"]);
    let failing = failing["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&failing, "waiting");
    server.json(&["approve", &failing]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let view = loop {
        let view = server.json(&["status", &failing]);
        if view["task"]["state"] == "failed" {
            break view;
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let reason = view["task"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the setup step `echo cannot resolve deps >&2; exit 3` exited with code 3")
            && reason.contains("nothing was cached")
            && reason.contains("cannot resolve deps"),
        "{reason}"
    );
    assert_eq!(
        std::fs::read_dir(super::caches_dir(data.path()))
            .unwrap()
            .count(),
        caches_before,
        "a failed setup left something behind"
    );

    // `du` shows the cache; `gc` keeps it while tasks use it, then removes
    // it, its inputs having changed.
    let du = server.json(&["du"]);
    assert_eq!(du["caches"].as_array().unwrap().len(), 1, "{du}");
    assert!(du["cache_bytes"].as_u64().unwrap() > 0, "{du}");
    for id in [&first, &second] {
        server.json(&["cancel", id]);
        server.json(&["task", "rm", id]);
    }
    let gc = server.json(&["gc", "--older-than-days", "9999"]);
    assert_eq!(gc["caches"].as_array().unwrap().len(), 1, "{gc}");
    assert_eq!(server.json(&["du"])["caches"], serde_json::json!([]));
}

#[test]
fn a_setup_network_entry_that_is_not_a_registry_fails_the_task_with_what_to_write() {
    let repo = pushpals_test_support::TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[setup]\ncommand = \"true\"\nnetwork = [\"pipy\"]\n",
    );
    repo.commit_all("setup");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let created = server.json(&["task", "One", "--run", "true"]);
    let id = created["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = server.json(&["status", id]);
        if view["task"]["state"] == "failed" {
            let reason = view["task"]["reason"].as_str().unwrap();
            assert!(reason.contains("`pipy` is neither a registry"), "{reason}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_task_that_changes_a_lock_file_gets_the_setup_again_in_its_own_worktree() {
    let repo = pushpals_test_support::TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[setup]\ncommand = \"mkdir -p .deps && cp requirements.txt .deps/installed\"\n\
         [checks]\ntest = \"cmp requirements.txt .deps/installed\"\n",
    );
    repo.write("requirements.txt", "flask==3.0\n");
    repo.write(".gitignore", ".deps/\n");
    repo.commit_all("setup");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let created = server.json(&[
        "task",
        "Bump flask",
        "--run",
        "echo flask==3.1 > requirements.txt",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    // The cache's setup, then the task's own after its change.
    let view = server.wait_for_state(&id, "waiting");
    assert!(
        view["approvals"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("runs once at the base commit"),
        "{view}"
    );
    server.json(&["approve", &id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let summary = loop {
        let view = server.json(&["status", &id]);
        let pending = view["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["state"] == "pending")
            .cloned();
        if let Some(approval) = pending {
            break approval["summary"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        summary.contains("The task changed requirements.txt")
            && summary.contains("again in its worktree"),
        "{summary}"
    );
    server.json(&["approve", &id]);
    let view = server.wait_for_state(&id, "awaiting_approval");
    let worktree = std::path::Path::new(view["task"]["worktree_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(worktree.join(".deps/installed")).unwrap(),
        "flask==3.1\n"
    );
    // The cache still holds what the base commit's setup made.
    let du = server.json(&["du"]);
    let key = du["caches"][0]["key"].as_str().unwrap();
    let cached = super::caches_dir(data.path())
        .join(key)
        .join("outputs/.deps/installed");
    assert_eq!(std::fs::read_to_string(cached).unwrap(), "flask==3.0\n");
}

#[test]
fn a_stopped_server_leaves_no_worktree_mounted_and_the_next_start_mounts_them_again() {
    let repo = pushpals_test_support::TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let mut server = start_server(&repo.path, data.path());
    let (id, view) = server.task_until("Edit", "echo changed >> README.md", "awaiting_approval");
    let worktree = std::path::PathBuf::from(view["task"]["worktree_path"].as_str().unwrap());
    let mounted = |path: &std::path::Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&*path.to_string_lossy()))
    };
    let overlay = mounted(&worktree);
    assert!(server.stop().success());
    assert!(
        !mounted(&worktree),
        "the stopped server left the worktree mounted"
    );
    let server = start_server(&repo.path, data.path());
    assert_eq!(
        mounted(&worktree),
        overlay,
        "the start did not mount it again"
    );
    assert!(
        std::fs::read_to_string(worktree.join("README.md"))
            .unwrap()
            .contains("changed"),
        "the task's change is gone"
    );
    server.json(&["approve", &id]);
    server.wait_for_state(&id, "committed");
}
