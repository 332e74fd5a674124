//! A scripted model server on loopback that speaks OpenAI Chat Completions
//! (`POST /v1/chat/completions`), OpenAI Responses (`POST /v1/responses`),
//! Anthropic Messages (`POST /v1/messages`) and Gemini (`POST
//! /v1beta/models/{model}:generateContent`), streaming or not, and replays a
//! script of replies (one module per protocol renders them): text,
//! tool calls, and errors such as a 429 with `Retry-After` or a 500. It
//! records every request so tests can assert on what was sent.
//!
//! Replies come from queues: a request takes the next reply of the first
//! queue whose marker occurs in its body (so parallel agents each get their
//! own script), else of the unmarked queue.
//!
//! Over 400 lines: the server, its script queues and the recording of
//! requests are one fixture; each protocol's rendering is its own module.

mod anthropic;
mod gemini;
mod openai;
mod responses;
mod shared;

use anthropic::{anthropic_stream, anthropic_whole};
use gemini::{gemini_chunk, gemini_stream};
use openai::{openai_stream, openai_whole};
use responses::{responses_stream, responses_whole};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What one reply is.
#[derive(Debug, Clone)]
enum Kind {
    Text(String),
    Tools(String, Vec<(String, String)>),
    Error {
        status: u16,
        message: String,
        retry_after: Option<String>,
    },
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    kind: Kind,
    delay: Duration,
    held: bool,
}

impl Reply {
    fn of(kind: Kind) -> Self {
        Self {
            kind,
            delay: Duration::ZERO,
            held: false,
        }
    }

    /// A text answer that ends the turn.
    pub fn text(text: &str) -> Self {
        Self::of(Kind::Text(text.to_owned()))
    }

    /// One tool call; `arguments` is sent as written (it may be malformed).
    pub fn tool(name: &str, arguments: &str) -> Self {
        Self::tools(&[(name, arguments)])
    }

    /// Several tool calls in one turn (parallel tool calls).
    pub fn tools(calls: &[(&str, &str)]) -> Self {
        Self::of(Kind::Tools(
            String::new(),
            calls
                .iter()
                .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
                .collect(),
        ))
    }

    /// Text followed by tool calls in the same turn.
    pub fn text_and_tools(text: &str, calls: &[(&str, &str)]) -> Self {
        match Self::tools(calls).kind {
            Kind::Tools(_, calls) => Self::of(Kind::Tools(text.to_owned(), calls)),
            other => Self::of(other),
        }
    }

    /// An error status with the protocol's error body.
    pub fn error(status: u16, message: &str) -> Self {
        Self::of(Kind::Error {
            status,
            message: message.to_owned(),
            retry_after: None,
        })
    }

    /// Adds a `Retry-After` header (seconds) to an error.
    pub fn retry_after(mut self, seconds: &str) -> Self {
        if let Kind::Error { retry_after, .. } = &mut self.kind {
            *retry_after = Some(seconds.to_owned());
        }
        self
    }

    /// Waits this long before answering.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Waits for [`ScriptedModel::release`] before answering.
    pub fn held(mut self) -> Self {
        self.held = true;
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `/v1/chat/completions` or `/v1/messages`.
    pub path: String,
    /// Its headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Its JSON body.
    pub body: Value,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    queues: Mutex<Vec<(String, VecDeque<Reply>)>>,
    requests: Mutex<Vec<Recorded>>,
    gate: watch::Sender<bool>,
    counter: Mutex<u64>,
}

/// The running server; stops when dropped.
pub struct ScriptedModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Openai,
    Anthropic,
    Responses,
    /// Gemini, with the model and method in the path.
    Gemini,
}

impl ScriptedModel {
    /// Serves one script to every request.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::start_keyed(vec![("", script)]).await
    }

    /// Serves several scripts, each to the requests whose body contains its
    /// marker (the empty marker matches every request).
    pub async fn start_keyed(scripts: Vec<(&str, Vec<Reply>)>) -> Self {
        let queues = scripts
            .into_iter()
            .map(|(marker, replies)| (marker.to_owned(), replies.into_iter().collect()))
            .collect();
        let shared = Arc::new(Shared {
            queues: Mutex::new(queues),
            requests: Mutex::new(Vec::new()),
            gate: watch::channel(false).0,
            counter: Mutex::new(0),
        });
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(|state, headers, body| answer(Protocol::Openai, state, headers, body)),
            )
            .route(
                "/v1/messages",
                post(|state, headers, body| answer(Protocol::Anthropic, state, headers, body)),
            )
            .route(
                "/v1/responses",
                post(|state, headers, body| answer(Protocol::Responses, state, headers, body)),
            )
            .route(
                "/v1beta/models/{*call}",
                post(
                    |axum::extract::Path(call): axum::extract::Path<String>,
                     state,
                     headers,
                     body| {
                        let stream = call.ends_with(":streamGenerateContent");
                        gemini_answer(call, stream, state, headers, body)
                    },
                ),
            )
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The base URL for an OpenAI-compatible client (ends in `/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL for an Anthropic client.
    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Replies not yet served.
    pub fn remaining(&self) -> usize {
        self.shared
            .queues
            .lock()
            .unwrap()
            .iter()
            .map(|(_, q)| q.len())
            .sum()
    }

    /// Lets held replies go.
    pub fn release(&self) {
        self.shared.gate.send_replace(true);
    }
}

async fn answer(
    protocol: Protocol,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(Recorded {
        path: match protocol {
            Protocol::Openai => "/v1/chat/completions".into(),
            Protocol::Anthropic => "/v1/messages".into(),
            Protocol::Responses => "/v1/responses".into(),
            Protocol::Gemini => "/v1beta/models".into(),
        },
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: parsed.clone(),
    });
    let reply = {
        let mut queues = shared.queues.lock().unwrap();
        queues
            .iter_mut()
            .filter(|(marker, q)| {
                !q.is_empty() && (marker.is_empty() || body.contains(marker.as_str()))
            })
            .max_by_key(|(marker, _)| marker.len())
            .and_then(|(_, q)| q.pop_front())
    };
    let Some(reply) = reply else {
        return error_response(
            protocol,
            400,
            "the script has no reply left for this request",
            None,
        );
    };
    if reply.held {
        let mut gate = shared.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
    }
    tokio::time::sleep(reply.delay).await;
    let id = {
        let mut counter = shared.counter.lock().unwrap();
        *counter += 1;
        *counter
    };
    let stream = parsed["stream"].as_bool().unwrap_or(false);
    let input_tokens = (body.len() / 4) as u64;
    match reply.kind {
        Kind::Error {
            status,
            message,
            retry_after,
        } => error_response(protocol, status, &message, retry_after),
        Kind::Text(text) => respond(protocol, stream, id, &text, &[], input_tokens),
        Kind::Tools(text, calls) => respond(protocol, stream, id, &text, &calls, input_tokens),
    }
}

fn error_response(
    protocol: Protocol,
    status: u16,
    message: &str,
    retry_after: Option<String>,
) -> Response {
    let body = match protocol {
        Protocol::Openai | Protocol::Responses => {
            json!({ "error": { "message": message, "type": "scripted" } })
        }
        Protocol::Gemini => {
            json!({ "error": { "code": status, "message": message, "status": "SCRIPTED" } })
        }
        Protocol::Anthropic => {
            json!({ "type": "error", "error": { "type": "scripted", "message": message } })
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds);
    }
    response.body(Body::from(body.to_string())).unwrap()
}

fn output_tokens(text: &str, calls: &[(String, String)]) -> u64 {
    let chars = text.len() + calls.iter().map(|(n, a)| n.len() + a.len()).sum::<usize>();
    (chars / 4 + 1) as u64
}

fn respond(
    protocol: Protocol,
    stream: bool,
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input_tokens: u64,
) -> Response {
    let output = output_tokens(text, calls);
    let (content_type, body) = match (protocol, stream) {
        (Protocol::Openai, false) => (
            "application/json",
            openai_whole(id, text, calls, input_tokens, output),
        ),
        (Protocol::Openai, true) => (
            "text/event-stream",
            openai_stream(id, text, calls, input_tokens, output),
        ),
        (Protocol::Anthropic, false) => (
            "application/json",
            anthropic_whole(id, text, calls, input_tokens, output),
        ),
        (Protocol::Anthropic, true) => (
            "text/event-stream",
            anthropic_stream(id, text, calls, input_tokens, output),
        ),
        (Protocol::Responses, false) => (
            "application/json",
            responses_whole(id, text, calls, input_tokens, output).to_string(),
        ),
        (Protocol::Responses, true) => (
            "text/event-stream",
            responses_stream(id, text, calls, input_tokens, output),
        ),
        (Protocol::Gemini, false) => (
            "application/json",
            gemini_chunk(id, text, calls, Some((input_tokens, output))).to_string(),
        ),
        (Protocol::Gemini, true) => (
            "text/event-stream",
            gemini_stream(id, text, calls, input_tokens, output),
        ),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

/// Answers `POST /v1beta/models/{call}`, recording the call's path.
async fn gemini_answer(
    call: String,
    stream: bool,
    state: State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut marked: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut marked {
        // Gemini's body has neither: the path says them.
        map.insert("stream".into(), json!(stream));
        map.insert(
            "model".into(),
            json!(call.split(':').next().unwrap_or_default()),
        );
    }
    answer(Protocol::Gemini, state, headers, marked.to_string()).await
}
