//! `scan`, `findings` and `dismiss` from the command line.

use super::support::*;
use pushpals_test_support::TempRepo;

#[test]
fn scan_list_and_dismiss_from_the_command_line() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let first = server.cli().args(["scan", "--json"]).output().unwrap();
    assert!(
        first.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&first.stderr),
        server.log.lock().unwrap()
    );
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let open = report["open"].as_array().unwrap();
    let no_ci = open
        .iter()
        .find(|f| {
            f["title"]
                .as_str()
                .unwrap()
                .starts_with("No CI configuration")
        })
        .expect("the fixture has no CI");
    let fingerprint = no_ci["fingerprint"].as_str().unwrap().to_owned();

    let printed = server.cli().arg("scan").output().unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.contains("0 new") && printed.contains("docs:"),
        "{printed}"
    );

    let docs = server.json(&["findings", "--kind", "docs"]);
    assert!(
        docs["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] == "docs")
    );
    let dismissed = server
        .cli()
        .args(["dismiss", &fingerprint, "--reason", "CI runs elsewhere"])
        .output()
        .unwrap();
    assert!(dismissed.status.success());
    let open = server.json(&["findings"]);
    assert!(
        open["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["fingerprint"] != fingerprint.as_str())
    );
    let all = server.json(&["findings", "--all"]);
    let kept = all["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fingerprint"] == fingerprint.as_str())
        .unwrap();
    assert_eq!(kept["state"], "dismissed");
    let unknown = server
        .cli()
        .args(["dismiss", "nope", "--reason", "x"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no finding nope"));
}
