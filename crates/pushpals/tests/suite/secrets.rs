//! The secret gate from the command line.

use super::support::*;
use pushpals_test_support::TempRepo;
use serde_json::Value;

#[test]
fn the_secret_gate_blocks_a_commit_until_each_finding_is_marked_a_false_positive() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    const AWS_KEY: &str = "AKIAQWERTYUIOPASDFGH";
    // The command assembles the secrets, so their values are not in the
    // command line itself: they come from the work, as a worker's would.
    let task = server.json(&[
        "task",
        "Add config",
        "--run",
        "printf 'KEY = \"%s%s\"\\n' AKIAQWERTY UIOPASDFGH > config.py && printf -- '-----BEGIN RSA %s KEY-----\\nMIIBOgIBAAJBAK\\n' PRIVATE > key.txt && cat config.py",
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state(&id, "awaiting_approval");
    assert!(
        view["approvals"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("BLOCKED by the secret gate (2 possible secrets)"),
        "{view}"
    );

    let refused = server.cli().args(["approve", &id]).output().unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(message.contains("blocked by the secret gate"), "{message}");
    assert!(
        message.contains("config.py:1 aws-access-key-id AKIA… (20 characters)"),
        "{message}"
    );
    assert!(message.contains("key.txt:1 private-key"), "{message}");
    assert_eq!(
        server.json(&["status", &id])["task"]["state"],
        "awaiting_approval"
    );

    // The value is nowhere: not in the events, the diff, the log, the API.
    let diff = server.json(&["diff", &id]);
    assert!(
        diff["diff"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:aws-access-key-id]")
    );
    let findings = diff["secret_findings"].as_array().unwrap().clone();
    assert_eq!(findings.len(), 2);
    let db = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
    let in_events: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM events WHERE payload LIKE ?1",
            [format!("%{AWS_KEY}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_events, 0, "the key is in the events table");
    let in_blobs: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM blobs WHERE CAST(content AS TEXT) LIKE ?1",
            [format!("%{AWS_KEY}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_blobs, 0, "the key is in a stored blob");
    let log = server.cli().args(["log", &id, "--json"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&log.stdout).contains(AWS_KEY));
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("[REDACTED:aws-access-key-id]"),
        "the output was redacted"
    );
    let export = server.cli().args(["audit", "export"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&export.stdout).contains(AWS_KEY));
    assert!(!server.log.lock().unwrap().contains(AWS_KEY));

    // A made-up fingerprint and a missing reason are refused.
    let wrong = server
        .cli()
        .args(["false-positive", &id, "0000", "--reason", "x"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no secret finding 0000"));
    let blank = server
        .cli()
        .args([
            "false-positive",
            &id,
            findings[0]["fingerprint"].as_str().unwrap(),
            "--reason",
            " ",
        ])
        .output()
        .unwrap();
    assert!(!blank.status.success());

    // Each finding overridden, with a reason: the commit goes ahead, and the
    // overrides are in the audit log.
    for finding in &findings {
        let fingerprint = finding["fingerprint"].as_str().unwrap();
        let marked = server
            .cli()
            .args([
                "false-positive",
                &id,
                fingerprint,
                "--reason",
                "test fixture, not a real key",
            ])
            .output()
            .unwrap();
        assert!(
            marked.status.success(),
            "{}",
            String::from_utf8_lossy(&marked.stderr)
        );
    }
    let approved = server.cli().args(["approve", &id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let overrides: Vec<Value> = server
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "secret_override")
        .collect();
    assert_eq!(overrides.len(), 2);
    assert_eq!(overrides[0]["actor"], "user:admin");
    assert_eq!(
        overrides[0]["payload"]["reason"],
        "test fixture, not a real key"
    );
}
