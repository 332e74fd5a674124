//! The live event stream: backfill after `Last-Event-ID`, then live events.

use super::support::api;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use pushpals_core::{Actor, EventKind, NewEvent, TaskId};
use pushpals_server::router;
use pushpals_store::Store;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

async fn append(store: &Store, task: &str, n: i64) {
    let task = TaskId::parse(task).unwrap();
    store
        .write(move |tx| {
            tx.append(NewEvent::for_task(
                &task,
                Actor::Orchestrator,
                EventKind::Output,
                json!({ "n": n }),
            ))
        })
        .await
        .unwrap();
}

/// Reads SSE frames from a body until `count` events arrived; returns
/// (id, task_id, n) of each.
async fn read_events(body: Body, count: usize) -> Vec<(i64, String, i64)> {
    let mut stream = body.into_data_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the stream went quiet")
            .expect("the stream ended")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().parse::<i64>().unwrap());
                }
                if let Some(value) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(value.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                assert_eq!(data["id"], id, "the SSE id is the event id");
                events.push((
                    id,
                    data["task_id"].as_str().unwrap_or("").to_owned(),
                    data["payload"]["n"].as_i64().unwrap_or(-1),
                ));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_resumes_after_last_event_id_then_goes_live() {
    let api = api().await;
    let (state, token) = (api.state.clone(), api.token.clone());
    let store = state.store().clone();
    for n in 1..=3 {
        append(&store, "alpha", n).await;
    }
    // Event ids 1..3 (the token is not an event). Resume after 1.
    let request = Request::get("/api/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .header("last-event-id", "1")
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let reader = tokio::spawn(read_events(response.into_body(), 4));
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&store, "alpha", 4).await;
    append(&store, "alpha", 5).await;
    let events = reader.await.unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e.0).collect();
    assert_eq!(
        ids,
        [2, 3, 4, 5],
        "backfilled 2 and 3, then live 4 and 5, nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_filters_by_task_and_rejects_bad_resume_points() {
    let api = api().await;
    let (state, token) = (api.state.clone(), api.token.clone());
    let store = state.store().clone();
    append(&store, "alpha", 1).await;
    append(&store, "beta", 2).await;
    let request = Request::get("/api/v1/events?task=beta&after=0")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let reader = tokio::spawn(read_events(response.into_body(), 2));
    append(&store, "alpha", 3).await;
    append(&store, "beta", 4).await;
    let events = reader.await.unwrap();
    assert!(events.iter().all(|e| e.1 == "beta"), "{events:?}");
    assert_eq!(events.iter().map(|e| e.2).collect::<Vec<_>>(), [2, 4]);

    let request = Request::get("/api/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .header("last-event-id", "yesterday")
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let request = Request::get("/api/v1/events").body(Body::empty()).unwrap();
    let response = router(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Reads SSE frames until the stream ends; returns the event ids.
async fn read_to_end(body: Body) -> Vec<i64> {
    let mut stream = body.into_data_stream();
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream went quiet")
    {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().parse().unwrap())
        .collect()
}

async fn subscribers(state: &pushpals_server::AppState) -> String {
    let text = state.metrics.render(&state.orchestrator).await.unwrap();
    text.lines()
        .find(|l| l.starts_with("pushpals_sse_subscribers "))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_resumes_without_a_gap() {
    let api = api().await;
    let mut state = api.state.clone();
    state.sse_patience = Duration::from_millis(300);
    let store = state.store().clone();
    let request = Request::get("/api/v1/events?after=0")
        .header("authorization", format!("Bearer {}", api.token))
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(subscribers(&state).await, "pushpals_sse_subscribers 1");
    // The client reads nothing while 600 events are written.
    for n in 1..=600 {
        append(&store, "alpha", n).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        subscribers(&state).await,
        "pushpals_sse_subscribers 0",
        "the stream of a client that stopped reading was dropped"
    );
    // What was queued still arrives, then the stream ends.
    let first = read_to_end(response.into_body()).await;
    let last = *first.last().unwrap();
    assert!(last < 600, "a bounded queue, not all 600 events: {last}");
    assert_eq!(first, (1..=last).collect::<Vec<_>>());
    // Back, it resumes where it stopped.
    let request = Request::get("/api/v1/events")
        .header("authorization", format!("Bearer {}", api.token))
        .header("last-event-id", last.to_string())
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let rest = read_events(response.into_body(), usize::try_from(600 - last).unwrap()).await;
    assert_eq!(rest.first().unwrap().0, last + 1);
    assert_eq!(rest.last().unwrap().0, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_streams_leave_the_api_answering() {
    let api = api().await;
    let state = api.state.clone();
    let mut idle = Vec::new();
    let app = router(state.clone());
    for _ in 0..2000 {
        let request = Request::get("/api/v1/events")
            .header("authorization", format!("Bearer {}", api.token))
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        idle.push(response);
    }
    assert_eq!(subscribers(&state).await, "pushpals_sse_subscribers 2000");
    let started = std::time::Instant::now();
    let (status, _) = api.authed("GET", "/api/v1/tasks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    append(state.store(), "alpha", 1).await;
    drop(idle);
    for _ in 0..100 {
        if subscribers(&state).await == "pushpals_sse_subscribers 0" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "closed streams were not let go: {}",
        subscribers(&state).await
    );
}
