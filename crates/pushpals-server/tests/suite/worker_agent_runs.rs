//! An external agent's task on a worker, played by the test: it goes only
//! to a worker that says it has the agent; its version probe and the agent
//! itself come as commands naming the agent, the agent's with its private
//! home and the model gateway, which the worker can reach through the
//! server only while the agent runs; a worker lost mid-agent has the task
//! offered again, not failed.

use super::support::api_on;
use super::worker_runs::{enrolled, events, next_offering, state_until};
use axum::http::StatusCode;
use base64::Engine;
use pushpals_test_support::{ScriptedModel, TempRepo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_agent_runs_on_a_worker_that_has_it_with_its_home_and_the_gateway() {
    let model = ScriptedModel::start(vec![]).await;
    let api = api_on(
        TempRepo::new(),
        &format!(
            "[workers]\nlocal = false\n[models.strong]\nprotocol = \"openai_responses\"\n\
             base_url = \"{}\"\nmodel = \"m\"\nmax_retries = 0\n",
            model.openai_base()
        ),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(pushpals_server::serve(
        listener,
        api.state.clone(),
        std::future::pending(),
    ));
    let token = enrolled(&api, "w1").await;
    let (status, task) = api
        .authed(
            "POST",
            "/api/v1/tasks",
            Some(json!({ "title": "bar", "agent": { "prompt": "add bar", "external": "codex" } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();

    // A worker without Codex is not given the task; it waits for one.
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/workers/next",
            Some(&token),
            Some(json!({ "holding": [] })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, status) = api.authed("GET", "/api/v1/status", None).await;
    let shown = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(
        shown["summary"]
            .as_str()
            .unwrap()
            .contains("waiting for a worker with agent:codex"),
        "{shown}"
    );

    let agents = json!([{ "name": "codex", "program": "/opt/agents/codex/bin/codex" }]);
    let start = next_offering(&api, &token, json!([]), &agents).await;
    assert_eq!(start["kind"], "start", "{start}");
    let lease = start["lease"].as_u64().unwrap();
    let holding = json!([{ "task": id, "lease": lease }]);
    let result = format!("/api/v1/workers/tasks/{id}/result");

    // The version, asked with the worker's program, in its sandbox.
    let probe = next_offering(&api, &token, holding.clone(), &agents).await;
    assert_eq!(probe["kind"], "run", "{probe}");
    let line = probe["command_line"].as_str().unwrap();
    assert!(
        line.contains("/opt/agents/codex/bin/codex") && line.contains("--version"),
        "{line}"
    );
    assert_eq!(probe["agent"]["name"], "codex");
    assert_eq!(probe["agent"]["gateway"], false);
    let seq = probe["seq"].as_u64().unwrap();
    let (status, _) = api
        .call_bytes(
            "POST",
            &format!(
                "/api/v1/workers/tasks/{id}/output?lease={lease}&seq={seq}&chunk=0&stream=stdout"
            ),
            &token,
            b"codex-cli 9.8.7\n".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = json!({ "lease": lease, "seq": seq, "chunks": 1, "exit_code": 0 });
    let (status, _) = api.call("POST", &result, Some(&token), Some(report)).await;
    assert_eq!(status, StatusCode::OK);

    // The agent: at the clone's path in the sandbox, its home of the
    // server's making (the gateway's address inside the sandbox), and the
    // gateway relayed.
    let launch = next_offering(&api, &token, holding.clone(), &agents).await;
    assert_eq!(launch["kind"], "run", "{launch}");
    assert!(
        launch["command_line"].as_str().unwrap().contains("exec"),
        "{launch}"
    );
    assert_eq!(launch["at_stable_path"], true);
    assert_eq!(launch["agent"]["gateway"], true);
    let home: String = launch["agent"]["home"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(file["base64"].as_str().unwrap())
                .unwrap();
            format!("{}: {}", file["path"], String::from_utf8_lossy(&bytes))
        })
        .collect();
    assert!(home.contains("127.0.0.1:4141"), "{home}");
    let started = events(&api, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "agent_started")
        .expect("the agent started");
    assert_eq!(started["payload"]["worker"], "w1");
    assert!(
        started["payload"]["version"]
            .as_str()
            .unwrap()
            .contains("9.8.7")
    );

    // The worker reaches the gateway through the server: a call without
    // the task's token is answered by the gateway itself.
    let agent_seq = launch["seq"].as_u64().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let upgrade = format!(
        "GET /api/v1/workers/tasks/{id}/gateway?lease={lease}&seq={agent_seq} HTTP/1.1\r\n\
         Host: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: upgrade\r\n\
         Upgrade: pushpals-tunnel\r\n\r\n"
    );
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    let mut switched = [0u8; 512];
    let n = stream.read(&mut switched).await.unwrap();
    let switched = String::from_utf8_lossy(&switched[..n]);
    assert!(switched.starts_with("HTTP/1.1 101"), "{switched}");
    let call = "POST /v1/responses HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
                Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    stream.write_all(call.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 401") && answer.contains("authentication_error"),
        "{answer}"
    );

    // The worker restarts mid-agent (it says it holds nothing): the run is
    // lost and the task offered again, not failed.
    let again = next_offering(&api, &token, json!([]), &agents).await;
    assert_eq!(again["kind"], "start", "{again}");
    assert_ne!(again["lease"], lease);
    let all = events(&api, &id).await;
    assert!(all.iter().any(|e| e["kind"] == "worker_lost"), "{all:?}");
    assert!(
        !all.iter()
            .any(|e| e["kind"] == "state_changed" && e["payload"]["to"] == "failed"),
        "{all:?}"
    );
    // The lost run's gateway is closed to the worker.
    let (status, _) = api
        .call_bytes(
            "GET",
            &format!("/api/v1/workers/tasks/{id}/gateway?lease={lease}&seq={agent_seq}"),
            &token,
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .authed("POST", &format!("/api/v1/tasks/{id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    state_until(&api, &id, "cancelled").await;
}
