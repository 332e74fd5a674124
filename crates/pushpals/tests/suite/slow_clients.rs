//! Clients that connect and never finish their request: thousands of them
//! cost the server little, a normal client still gets answers, and the
//! server closes them after the header deadline.

use super::support::*;
use pushpals_test_support::TempRepo;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Raises this test process's open-files limit to hold the connections.
fn raise_own_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn two_thousand_slow_connections_do_not_stop_a_normal_client() {
    raise_own_open_files_limit();
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        "[server]\nheader_timeout_secs = 3\nbody_timeout_secs = 5\n",
    );
    let server = start_server(&repo.path, data.path());
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for i in 0..2000 {
        let mut stream = TcpStream::connect(&address).unwrap();
        if i % 2 == 0 {
            // Half a request: headers that never end.
            write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        }
        held.push(stream);
    }
    for _ in 0..3 {
        let answer = get(&address, "/healthz");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // A request body that never arrives does not hold a handler either.
    let mut body = TcpStream::connect(&address).unwrap();
    write!(
        body,
        "POST /api/v1/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();

    // The server closes the half-sent ones after its header deadline.
    let slow = &mut held[0];
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the server kept a half-sent request open: {closed:?}"
    );
    let idle = &mut held[1];
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert!(
        idle.read_to_end(&mut rest).is_ok(),
        "an idle connection stayed open"
    );
    body.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = body.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let answer = get(&address, "/healthz");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
