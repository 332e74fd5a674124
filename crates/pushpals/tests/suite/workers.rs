//! `pushpals worker token` and `pushpals workers` against the real server:
//! a worker named, enrolled with its one-time token, listed and revoked.

use super::support::served;
use std::process::Command;

#[test]
fn a_worker_is_named_enrolled_listed_and_revoked_from_the_command_line() {
    let (_repo, _data, server) = served();
    let said = server
        .cli()
        .args([
            "worker",
            "token",
            "--name",
            "build-1",
            "--labels",
            "cargo,node",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&said.stdout).into_owned();
    assert!(
        said.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&said.stderr)
    );
    assert!(text.contains("build-1 (cargo, node)"), "{text}");
    let token = text.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("pp_"), "{text}");

    let listed = server.cli().arg("workers").output().unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.contains("waiting to enrol"), "{table}");

    let enrolled = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(format!(
            r#"{{"token":"{token}","cores":2,"version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ))
        .arg(format!("{}/api/v1/workers/enrol", server.url))
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{enrolled:?}");
    let listed = server.cli().arg("workers").output().unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    let row = table.lines().find(|l| l.starts_with("build-1")).unwrap();
    assert!(row.contains("enrolled") && row.contains("s ago"), "{table}");

    let bad = server
        .cli()
        .args(["worker", "token", "--name", "../up"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name the worker"));

    let revoked = server
        .cli()
        .args(["workers", "--revoke", "build-1"])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    let listed = server.json(&["workers"]);
    assert!(listed["workers"][0]["revoked_at"].is_string(), "{listed}");
}
