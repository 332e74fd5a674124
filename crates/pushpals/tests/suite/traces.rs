//! Traces over OTLP: a local receiver started by the test gets the spans of
//! one task, under the trace id its `task_created` event names.

use super::support::{start_server_with_env, write_config};
use pushpals_test_support::TempRepo;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An OTLP/HTTP receiver: keeps each JSON body posted to `/v1/traces`.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    if request_line.contains("/v1/traces")
                        && let Ok(json) = serde_json::from_slice(&body)
                    {
                        kept.lock().unwrap().push(json);
                    }
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                    );
                }
            });
        }
    });
    (url, bodies)
}

/// Every span received: (trace id, name).
fn spans(bodies: &Mutex<Vec<Value>>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for body in bodies.lock().unwrap().iter() {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    out.push((
                        span["traceId"].as_str().unwrap_or_default().to_lowercase(),
                        span["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn a_tasks_spans_reach_an_otlp_receiver_under_the_trace_id_of_its_events() {
    let (url, bodies) = receiver();
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[telemetry]\notlp_endpoint = \"{url}\"\nservice_name = \"pushpals-test\"\n\
             log_format = \"json\"\n"
        ),
    );
    let server = start_server_with_env(
        &repo.path,
        data.path(),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let created = server.json(&["task", "Traced", "--run", "echo traced", "--approve-run"]);
    let id = created["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "no_changes");
    let events = server.events(&id);
    let trace_id = events
        .iter()
        .find(|e| e["kind"] == "task_created")
        .and_then(|e| e["payload"]["trace_id"].as_str())
        .expect("task_created names the trace")
        .to_owned();
    assert_eq!(trace_id.len(), 32);

    let mut names = Vec::new();
    for _ in 0..100 {
        let all = spans(&bodies);
        names = all
            .iter()
            .filter(|(trace, _)| *trace == trace_id)
            .map(|(_, name)| name.clone())
            .collect();
        if names.iter().any(|n| n == "task")
            && names.iter().any(|n| n == "command")
            && all.iter().any(|(_, n)| n == "request")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(names.iter().any(|n| n == "task"), "{names:?}");
    assert!(names.iter().any(|n| n == "command"), "{names:?}");
    let service =
        bodies.lock().unwrap()[0]["resourceSpans"][0]["resource"]["attributes"].to_string();
    assert!(service.contains("pushpals-test"), "{service}");

    // With log_format = "json", each log line is one JSON object.
    let mut logged = Vec::new();
    for _ in 0..100 {
        logged = server
            .log
            .lock()
            .unwrap()
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON log line"))
            .collect();
        if !logged.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = logged.first().expect("the server logged something");
    assert!(
        line["level"].is_string() && line["target"].is_string(),
        "{line}"
    );
}
