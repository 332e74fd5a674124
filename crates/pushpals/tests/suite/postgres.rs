//! The real server with its store in PostgreSQL (a throwaway cluster from
//! Debian's packages): killed with SIGKILL at random moments, moved there
//! from SQLite with `store migrate`, and the errors a person meets.

use super::crash::killed_at_random_moments;
use super::support::{BIN, isolated, start_server_with_env, write_config};
use pushpals_test_support::{TempRepo, postgres_database};
use std::process::Command;

#[test]
fn a_server_on_postgres_killed_at_random_moments_loses_nothing_acknowledged() {
    let db = postgres_database();
    killed_at_random_moments(&[("PUSHPALS_DATABASE", &db.url)]);
}

/// `pushpals ARGS` run as a person on this data dir would, with no server.
fn offline(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.args(args);
    isolated(&mut command, data);
    command.output().unwrap()
}

#[test]
fn a_sqlite_store_moves_to_postgres_and_the_server_goes_on_from_it() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let mut server = start_server_with_env(&repo.path, data.path(), &[]);
    let (id, _) = server.task_until(
        "Write a file",
        "echo moved > moved.txt",
        "awaiting_approval",
    );
    let before = server.json(&["audit", "verify"]);
    assert_eq!(before["ok"], true, "{before}");
    // The copy refuses while the server holds the data directory.
    let db = postgres_database();
    let busy = offline(data.path(), &["store", "migrate", "--to", &db.url]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("stop the server"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    server.stop();
    drop(server);

    let moved = offline(data.path(), &["store", "migrate", "--to", &db.url]);
    let said = String::from_utf8_lossy(&moved.stdout);
    assert!(
        moved.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(
        said.contains(before["head_hash"].as_str().unwrap()),
        "{said}"
    );
    // Twice is refused: the target holds a store now.
    let again = offline(data.path(), &["store", "migrate", "--to", &db.url]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));

    let server = start_server_with_env(&repo.path, data.path(), &[("PUSHPALS_DATABASE", &db.url)]);
    // The copied log is the same, event for event, with the new start's
    // events after it.
    let after = server.json(&["audit", "verify"]);
    assert_eq!(after["ok"], true, "{after}");
    let export = server.cli().args(["audit", "export"]).output().unwrap();
    let exported = String::from_utf8_lossy(&export.stdout);
    let head: serde_json::Value = exported
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["id"] == before["head_id"])
        .expect("the source's last event is in the copy");
    assert_eq!(head["hash"], before["head_hash"], "{head}");
    let approved = server.cli().args(["approve", &id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    server.wait_for_state(&id, "committed");
    let verified = server.json(&["audit", "verify"]);
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["head_id"].as_i64() > after["head_id"].as_i64());
}

#[test]
fn a_wrong_or_silent_database_stops_the_start_with_why() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let nowhere = tempfile::tempdir().unwrap();
    let silent = format!(
        "postgresql://pushpals:hunter2@{}/pushpals",
        nowhere.path().to_string_lossy().replace('/', "%2F")
    );
    let cases = [
        ("mysql://root@db/x", "not a PostgreSQL URL"),
        (silent.as_str(), "does not answer"),
    ];
    for (url, why) in cases {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path)
            .args(["--database", url]);
        isolated(&mut command, data.path());
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    // SQLite's backup and restore say what to use for a PostgreSQL store.
    write_config(
        data.path(),
        &format!("[store]\nurl = \"{}\"\n", postgres_database().url),
    );
    let backup = offline(data.path(), &["backup", "copy.db"]);
    assert!(!backup.status.success());
    assert!(String::from_utf8_lossy(&backup.stderr).contains("pg_dump"));
}
