//! Real projects that need a setup step: itsdangerous (Python: a virtual
//! environment with the package installed editable, pytest and freezegun
//! from the package index) and clsx (Node: `npm install` from the npm
//! registry). The setup is asked for once, runs in the sandbox with network
//! only to the registry, and every later task starts from its result.

use super::real_projects::{assert_check_passed_unasked, check_millis, clone_bundle, git};
use super::support::*;
use std::path::Path;
use std::time::Duration;

/// Commits `pushpals.toml` into the clone.
pub(super) fn commit_config(repo: &Path, config: &str) {
    std::fs::write(repo.join("pushpals.toml"), config).unwrap();
    git(repo, &["add", "pushpals.toml"]);
    git(repo, &["commit", "-q", "-m", "pushpals"]);
}

/// Runs two one-line tasks: the first waits for the setup's approval,
/// builds the cache and passes its check; the second starts warm with no
/// approval. Returns the events of both.
pub(super) fn two_tasks(
    server: &Server,
    file: &str,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let line = format!("printf '\\n' >> {file}");
    let first = server.json(&["task", "Add a blank line", "--run", &line]);
    let first = first["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state_within(&first, "waiting", Duration::from_secs(120));
    let summary = view["approvals"][0]["summary"].as_str().unwrap();
    for words in [
        "the repository's setup",
        "with network to ",
        "once at the base commit",
    ] {
        assert!(summary.contains(words), "{summary}");
    }
    server.json(&["approve", &first]);
    server.wait_for_state_within(&first, "awaiting_approval", Duration::from_secs(900));
    let first_events = server.events(&first);
    assert_check_passed_unasked(&first_events);
    assert!(
        first_events.iter().any(|e| e["kind"] == "network_allowed"),
        "the setup reached no registry"
    );
    assert!(first_events.iter().any(|e| e["kind"] == "cache_built"));

    let (second, _) = server.task_until("Add another blank line", &line, "awaiting_approval");
    let second_events = server.events(&second);
    assert_check_passed_unasked(&second_events);
    assert!(
        !second_events
            .iter()
            .any(
                |e| (e["kind"] == "approval_requested" && e["payload"]["action"] == "command")
                    || e["kind"] == "cache_built"
            ),
        "the second task asked or built again"
    );
    assert!(second_events.iter().any(|e| e["kind"] == "cache_used"));
    // What the cache brought (a virtual environment, node_modules) is not
    // the task's change: the diff is the one line.
    let diff = server.json(&["diff", &second]);
    let text = diff["diff"].as_str().unwrap();
    assert_eq!(
        text.matches("diff --git").count(),
        1,
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(
        text.contains(&format!("diff --git a/{file} b/{file}")),
        "{text}"
    );
    (first_events, second_events)
}

#[test]
fn itsdangerous_gets_its_virtual_environment_once_and_pytest_passes_in_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let repo = clone_bundle("itsdangerous", dir.path());
    commit_config(
        &repo,
        "[setup]\n\
         command = \"python3 -m venv .venv && .venv/bin/pip install -q -e . pytest freezegun\"\n\
         network = [\"pypi\"]\n\
         [checks]\n\
         test = \"pytest -q\"\n",
    );
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo, data.path());
    let (_, second) = two_tasks(&server, "README.md");
    println!(
        "itsdangerous check, second task: {} ms",
        check_millis(&second)
    );
}

#[test]
fn clsx_gets_its_node_modules_once_and_npm_test_passes_in_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let repo = clone_bundle("clsx", dir.path());
    commit_config(
        &repo,
        "[setup]\n\
         command = \"npm install --no-audit --no-fund\"\n\
         network = [\"npm\"]\n\
         [checks]\n\
         test = \"npm test\"\n",
    );
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo, data.path());
    let (_, second) = two_tasks(&server, "readme.md");
    println!("clsx check, second task: {} ms", check_millis(&second));
}

#[test]
fn itoa_fetches_its_crates_into_its_own_cargo_home_once_and_tests_offline_in_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let repo = clone_bundle("itoa", dir.path());
    commit_config(
        &repo,
        "[setup]\n\
         command = \"cargo fetch\"\n\
         network = [\"cargo\"]\n\
         [checks]\n\
         test = \"cargo test --offline\"\n",
    );
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo, data.path());
    let (first, second) = two_tasks(&server, "README.md");
    // The crates came from the registry into the setup's own cargo home,
    // which the cache carries to every task (the host's is never written).
    let built = first.iter().find(|e| e["kind"] == "cache_built").unwrap();
    let entries = built["payload"]["entries"].to_string();
    assert!(entries.contains(".pushpals"), "{entries}");
    println!(
        "itoa check (setup's cargo home), second task: {} ms",
        check_millis(&second)
    );
}
