//! `GET /api/v1/events`: the live event stream (Server-Sent Events),
//! resumable with `Last-Event-ID`.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::sse_frames::{Frames, KEEP_ALIVE};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::StreamExt;
use pushpals_core::{Event, TaskId};
use pushpals_store::{EventQuery, Store};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Frames queued for one subscriber at most (references to shared
/// frames); a client that stops reading holds no more than this.
const SUBSCRIBER_QUEUE: usize = 32;

/// A quiet stream sends a keep-alive comment this often.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

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
) -> Result<Response, ApiError> {
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
    let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
    let closing = state.closing.subscribe();
    let subscribed = crate::metrics::Subscribed::new(&state.metrics);
    let patience = state.sse_patience;
    let frames = state.frames.clone();
    tokio::spawn(async move {
        let _counted = subscribed;
        let follow = Follow {
            task_id,
            patience,
            frames,
        };
        forward(store, live, follow, start_after, sender, closing).await;
    });
    let body = Body::from_stream(ReceiverStream::new(receiver).map(Ok::<_, Infallible>));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

type Sender = mpsc::Sender<Bytes>;

/// What one stream follows, how long it waits for a client that does not
/// read, and where shared frames come from.
struct Follow {
    task_id: Option<TaskId>,
    patience: Duration,
    frames: Arc<Frames>,
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
    let Follow {
        task_id,
        patience,
        frames,
    } = follow;
    let wanted = |event: &Event| {
        task_id
            .as_ref()
            .is_none_or(|id| event.task_id.as_deref() == Some(id.as_str()))
    };
    let target = Target {
        frames: &frames,
        sender: &sender,
        patience,
    };
    if backfill(&store, &task_id, &mut last_sent, &target)
        .await
        .is_err()
    {
        return;
    }
    let mut quiet = tokio::time::interval(KEEP_ALIVE_EVERY);
    quiet.reset();
    loop {
        tokio::select! {
            _ = quiet.tick() => {
                if deliver_frame(&sender, Bytes::from_static(KEEP_ALIVE), patience).await.is_err() {
                    return;
                }
            }
            received = live.recv() => match received {
                Ok(event) => {
                    if event.id <= last_sent {
                        continue;
                    }
                    last_sent = event.id;
                    if wanted(&event) {
                        quiet.reset();
                        if target.deliver(&event).await.is_err() {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if backfill(&store, &task_id, &mut last_sent, &target).await.is_err() {
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

/// Where one subscriber's frames go.
struct Target<'a> {
    frames: &'a Frames,
    sender: &'a Sender,
    patience: Duration,
}

impl Target<'_> {
    /// Queues the shared frame of one event for the client.
    async fn deliver(&self, event: &Event) -> Result<(), ()> {
        deliver_frame(self.sender, self.frames.frame(event), self.patience).await
    }
}

/// Queues one frame for the client. A client that leaves `patience` pass
/// with its queue full is dropped: its stream ends, and it resumes where it
/// stopped with `Last-Event-ID` when it reads again. Memory per client
/// stays bounded by the queue of shared frames.
async fn deliver_frame(sender: &Sender, frame: Bytes, patience: Duration) -> Result<(), ()> {
    match tokio::time::timeout(patience, sender.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            tracing::info!("dropped an event stream whose client stopped reading");
            Err(())
        }
    }
}

/// Sends every stored event after `last_sent`, page by page.
async fn backfill(
    store: &Store,
    task_id: &Option<TaskId>,
    last_sent: &mut i64,
    target: &Target<'_>,
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
            target.deliver(event).await?;
            *last_sent = event.id;
        }
        if !full {
            return Ok(());
        }
    }
}
