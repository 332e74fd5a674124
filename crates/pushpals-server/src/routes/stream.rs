//! `GET /api/v1/events`: the live event stream (Server-Sent Events),
//! resumable with `Last-Event-ID`.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use pushpals_core::{Event, TaskId};
use pushpals_store::{EventQuery, Store};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Query of the stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only this task's events.
    pub task: Option<String>,
    /// Start after this event id (as `Last-Event-ID` does). Without either,
    /// the stream starts with the next event.
    pub after: Option<i64>,
}

/// How many stored events one backfill read takes.
const BACKFILL_PAGE: u32 = 500;

/// Streams committed events: first the stored ones after the resume point,
/// then live ones as they commit. A slow client that falls behind is caught
/// up from the store, so it never misses an event.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(StreamQuery),
    responses((status = 200, description = "committed events as Server-Sent Events", content_type = "text/event-stream", body = String), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(Scope::Read)?;
    let task_id = match query.task.as_deref() {
        Some(text) => Some(super::task_id(&state, text).await?),
        None => None,
    };
    let last_event_id = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID must be an event id (a number)")
                })
        })
        .transpose()?;
    let store = state.store().clone();
    // Subscribe before reading the store, so nothing falls between the two.
    let live = store.subscribe();
    let start_after = match last_event_id.or(query.after) {
        Some(id) => id,
        None => store.last_event_id().await?,
    };
    let (sender, receiver) = mpsc::channel(256);
    let closing = state.closing.subscribe();
    let subscribed = crate::metrics::Subscribed::new(&state.metrics);
    let patience = state.sse_patience;
    tokio::spawn(async move {
        let _counted = subscribed;
        let follow = Follow { task_id, patience };
        forward(store, live, follow, start_after, sender, closing).await;
    });
    let stream = ReceiverStream::new(receiver);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn to_sse(event: &Event) -> Result<SseEvent, Infallible> {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Ok(SseEvent::default().id(event.id.to_string()).data(data))
}

type Sender = mpsc::Sender<Result<SseEvent, Infallible>>;

/// What one stream follows, and how long it waits for a client that does
/// not read.
struct Follow {
    task_id: Option<TaskId>,
    patience: Duration,
}

/// Sends stored events after `last_sent`, then live ones; returns when the
/// client goes away, the server closes, or the store fails.
async fn forward(
    store: Store,
    mut live: broadcast::Receiver<Event>,
    follow: Follow,
    mut last_sent: i64,
    sender: Sender,
    mut closing: watch::Receiver<bool>,
) {
    let Follow { task_id, patience } = follow;
    let wanted = |event: &Event| {
        task_id
            .as_ref()
            .is_none_or(|id| event.task_id.as_deref() == Some(id.as_str()))
    };
    if backfill(&store, &task_id, &mut last_sent, &sender, patience)
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(event) => {
                    if event.id <= last_sent {
                        continue;
                    }
                    last_sent = event.id;
                    if wanted(&event) && deliver(&sender, &event, patience).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if backfill(&store, &task_id, &mut last_sent, &sender, patience).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = closing.changed() => return,
            () = sender.closed() => return,
        }
    }
}

/// Queues one event for the client. A client that leaves `patience` pass
/// with its queue full is dropped: its stream ends, and it resumes where it
/// stopped with `Last-Event-ID` when it reads again. Memory per client
/// stays bounded by the queue.
async fn deliver(sender: &Sender, event: &Event, patience: Duration) -> Result<(), ()> {
    match tokio::time::timeout(patience, sender.send(to_sse(event))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            tracing::info!(
                event = event.id,
                "dropped an event stream whose client stopped reading"
            );
            Err(())
        }
    }
}

/// Sends every stored event after `last_sent`, page by page.
async fn backfill(
    store: &Store,
    task_id: &Option<TaskId>,
    last_sent: &mut i64,
    sender: &Sender,
    patience: Duration,
) -> Result<(), ()> {
    loop {
        let page = store
            .events(EventQuery {
                after: *last_sent,
                task_id: task_id.clone(),
                limit: Some(BACKFILL_PAGE),
            })
            .await
            .map_err(|error| tracing::warn!(%error, "event stream backfill failed"))?;
        let full = page.len() == BACKFILL_PAGE as usize;
        for event in &page {
            deliver(sender, event, patience).await?;
            *last_sent = event.id;
        }
        if !full {
            return Ok(());
        }
    }
}
