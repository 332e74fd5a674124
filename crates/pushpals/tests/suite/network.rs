//! Network grants through the proxy, seen from the command line.

use super::support::*;
use pushpals_test_support::TempRepo;

#[test]
fn a_command_granted_network_reaches_allowlisted_hosts_only_and_it_is_audited() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    super::support::write_config(data.path(), "[network]\nallow = [\"localhost\"]\n");
    // A host-side web page.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello-from-host");
        }
    });
    let server = start_server(&repo.path, data.path());

    // curl needs the network: policy asks; approving it runs it through the proxy.
    let task = server.json(&[
        "task",
        "Fetch",
        "--run",
        &format!("curl -s http://localhost:{port}/ > page.txt; curl -s http://127.0.0.1:{port}/ > refused.txt; true"),
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "waiting");
    let approved = server.cli().args(["approve", &id]).output().unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    server.wait_for_state(&id, "awaiting_approval");
    let diff = server.json(&["diff", &id]);
    let text = diff["diff"].as_str().unwrap();
    assert!(text.contains("+hello-from-host"), "{text}");
    assert!(text.contains("refused this connection"), "{text}");
    let events = server.events(&id);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "network_allowed" && e["payload"]["host"] == "localhost")
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "network_refused" && e["payload"]["host"] == "127.0.0.1")
    );
    let decision = events
        .iter()
        .find(|e| e["kind"] == "policy_decision")
        .unwrap();
    assert_eq!(decision["payload"]["network"], true);

    // A command not granted network has none at all.
    let offline = server.json(&["task", "Offline", "--run", &format!("echo x > a.txt; bash -c 'cat < /dev/tcp/127.0.0.1/{port}' > b.txt && echo reached > c.txt; true")]);
    let offline_id = offline["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&offline_id, "awaiting_approval");
    let diff = server.json(&["diff", &offline_id]);
    let text = diff["diff"].as_str().unwrap();
    assert!(!text.contains("hello-from-host"), "{text}");
    assert!(!text.contains("c.txt"), "{text}");
}
