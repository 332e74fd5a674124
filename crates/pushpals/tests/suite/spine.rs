//! The spine: two concurrent tasks from request to approved commit, with a
//! verifiable audit trail.

use super::support::*;
use pushpals_test_support::TempRepo;
use serde_json::Value;

#[test]
fn two_concurrent_tasks_from_request_to_approved_commit_with_a_verifiable_audit_trail() {
    let repo = TempRepo::new();
    repo.write("src/other.rs", "pub fn foo_too() {}\n");
    repo.commit_all("second file");
    // The person's own state: an uncommitted file and a staged change.
    repo.write("scratch.txt", "mine, uncommitted\n");
    repo.write("README.md", "# demo\nstaged line\n");
    repo.git(&["add", "README.md"]);
    let head_before = repo.git(&["rev-parse", "HEAD"]);
    let index_before = repo.git(&["diff", "--cached"]);
    let status_before = repo.git(&["status", "--porcelain"]);

    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());

    let rename = server.json(&[
        "task",
        "Rename foo to bar",
        "--run",
        "sleep 1.5 && sed -i s/foo/bar/g src/lib.rs",
    ]);
    let other = server.json(&[
        "task",
        "Rename foo_too",
        "--run",
        "sleep 1.5 && sed -i s/foo_too/baz/g src/other.rs",
    ]);
    let rename_id = rename["id"].as_str().unwrap().to_owned();
    let other_id = other["id"].as_str().unwrap().to_owned();

    server.wait_for_state(&rename_id, "awaiting_approval");
    server.wait_for_state(&other_id, "awaiting_approval");

    // They ran at the same time: their worker commands overlap.
    let (a_start, a_end) = worker_interval(&server.events(&rename_id));
    let (b_start, b_end) = worker_interval(&server.events(&other_id));
    assert!(
        a_start < b_end && b_start < a_end,
        "no overlap: {a_start}..{a_end} vs {b_start}..{b_end}"
    );

    // Each diff holds only its own change.
    let diff = server.json(&["diff", &rename_id]);
    assert_eq!(diff["files"].as_array().unwrap().len(), 1);
    assert_eq!(diff["files"][0]["path"], "src/lib.rs");
    assert!(diff["diff"].as_str().unwrap().contains("+pub fn bar() {}"));
    let plain = server.cli().args(["diff", &other_id]).output().unwrap();
    assert!(
        String::from_utf8(plain.stdout)
            .unwrap()
            .contains("+pub fn baz() {}")
    );

    // `log --follow` on a task that waits for approval prints and returns.
    let followed = server
        .cli()
        .args(["log", &rename_id, "--follow"])
        .output()
        .unwrap();
    assert!(followed.status.success());
    assert!(
        String::from_utf8(followed.stdout)
            .unwrap()
            .contains("checking → awaiting_approval")
    );

    let approved = server.cli().args(["approve", &rename_id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(
        String::from_utf8(approved.stdout)
            .unwrap()
            .starts_with("Committed ")
    );
    let denied = server
        .cli()
        .args(["deny", &other_id, "--reason", "not this one"])
        .output()
        .unwrap();
    assert!(denied.status.success());

    // The commit is on the task's branch with the expected message.
    let branch = format!("pushpals/{rename_id}");
    let message = repo.git(&["log", "-1", "--format=%B", &branch]);
    assert!(message.starts_with("Rename foo to bar\n\n"), "{message}");
    assert!(
        message.contains("Ran: sleep 1.5 && sed -i s/foo/bar/g src/lib.rs"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Pushpals-Task: {rename_id}")),
        "{message}"
    );
    assert_eq!(
        repo.git(&["rev-parse", &format!("{branch}~1")]),
        head_before
    );
    assert_eq!(
        repo.git(&["show", &format!("{branch}:src/lib.rs")]),
        "pub fn bar() {}"
    );

    // The denied task: rejected, with its branch left for inspection and no commit.
    let view = server.json(&["status", &other_id]);
    assert_eq!(view["task"]["state"], "rejected");
    assert_eq!(view["approvals"][0]["reason"], "not this one");
    assert_eq!(
        repo.git(&["rev-parse", &format!("pushpals/{other_id}")]),
        head_before
    );

    // The person's checkout: same branch, same HEAD, same index, same files.
    assert_eq!(repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head_before);
    assert_eq!(repo.git(&["diff", "--cached"]), index_before);
    assert_eq!(repo.git(&["status", "--porcelain"]), status_before);
    assert_eq!(repo.read("scratch.txt"), "mine, uncommitted\n");
    assert_eq!(repo.read("src/lib.rs"), "pub fn foo() {}\n");

    // Approving again is a conflict, not a second commit.
    let again = server.cli().args(["approve", &rename_id]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no pending approval"));

    // The audit chain holds...
    let verified = server.cli().args(["audit", "verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let report = server.json(&["audit", "verify"]);
    assert_eq!(report["ok"], true);
    let head_id = report["head_id"].as_i64().unwrap();

    // ...and names the event whose byte was changed.
    let target = server
        .events(&rename_id)
        .into_iter()
        .find(|e| e["kind"] == "command_started")
        .unwrap();
    let target_id = target["id"].as_i64().unwrap();
    let db = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
    db.execute_batch("DROP TRIGGER events_no_update").unwrap();
    let changed = db
        .execute(
            "UPDATE events SET payload = replace(payload, 'sleep 1.5', 'sleep 1.6') WHERE id = ?1",
            [target_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let broken = server.cli().args(["audit", "verify"]).output().unwrap();
    assert!(!broken.status.success());
    let text = String::from_utf8(broken.stdout).unwrap();
    assert!(
        text.contains(&format!("BROKEN at event #{target_id}")),
        "{text}"
    );
    let report = server
        .cli()
        .args(["audit", "verify", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["first_broken_event"], target_id);
    assert_eq!(report["head_id"], head_id);

    // The export has every event.
    let export = server.cli().args(["audit", "export"]).output().unwrap();
    assert!(export.status.success());
    assert_eq!(
        String::from_utf8(export.stdout).unwrap().lines().count() as i64,
        head_id
    );
}
