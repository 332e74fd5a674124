//! `backup` while serving, `restore` when stopped.

use super::support::*;
use pushpals_test_support::TempRepo;

fn pushpals(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(BIN);
    command.args(args);
    isolated(&mut command, data);
    command.output().unwrap()
}

#[test]
fn a_backup_taken_while_serving_restores_and_verifies() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let saved = data.path().join("saved.db");
    let server = start_server(&repo.path, data.path());
    let task = server.json(&["task", "Touch", "--run", "touch t.txt"]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "awaiting_approval");

    let backed = pushpals(data.path(), &["backup", saved.to_str().unwrap()]);
    assert!(
        backed.status.success(),
        "{}",
        String::from_utf8_lossy(&backed.stderr)
    );
    assert!(String::from_utf8_lossy(&backed.stdout).contains("1 tasks"));
    let again = pushpals(data.path(), &["backup", saved.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let busy = pushpals(data.path(), &["restore", saved.to_str().unwrap()]);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("stop the server"));

    // Work after the backup, then go back to it.
    server.json(&["approve", &id]);
    server.wait_for_state(&id, "committed");
    drop(server);
    let garbage = data.path().join("garbage.db");
    std::fs::write(&garbage, "not a database").unwrap();
    let refused = pushpals(data.path(), &["restore", garbage.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nothing was changed"));

    let restored = pushpals(data.path(), &["restore", saved.to_str().unwrap()]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(String::from_utf8_lossy(&restored.stdout).contains("kept as"));
    let server = start_server(&repo.path, data.path());
    let view = server.json(&["status", &id]);
    assert_eq!(
        view["task"]["state"], "awaiting_approval",
        "the database is as it was at the backup, before the approval"
    );
    let verified = server.json(&["audit", "verify"]);
    assert_eq!(verified["ok"], true);
}
