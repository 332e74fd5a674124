//! A scripted model server on loopback that speaks OpenAI Chat Completions
//! (`POST /v1/chat/completions`), OpenAI Responses (`POST /v1/responses`)
//! and Anthropic Messages (`POST /v1/messages`), streaming or not, and replays a script of replies: text,
//! tool calls, and errors such as a 429 with `Retry-After` or a 500. It
//! records every request so tests can assert on what was sent.
//!
//! Replies come from queues: a request takes the next reply of the first
//! queue whose marker occurs in its body (so parallel agents each get their
//! own script), else of the unmarked queue.

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

fn call_id(id: u64, index: usize) -> String {
    format!("call_{id}_{index}")
}

fn openai_whole(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            json!({ "id": call_id(id, i), "type": "function", "function": { "name": name, "arguments": arguments } })
        })
        .collect();
    let mut message = json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) } });
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" },
        }],
        "usage": { "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output },
    })
    .to_string()
}

/// Splits text into pieces of a few characters, on char boundaries.
fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

fn sse(out: &mut String, event: Option<&str>, data: &Value) {
    if let Some(event) = event {
        out.push_str(&format!("event: {event}\n"));
    }
    out.push_str(&format!("data: {data}\n\n"));
}

fn openai_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    let chunk = |delta: Value, finish: Value| {
        json!({ "id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk",
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    sse(
        &mut out,
        None,
        &chunk(json!({ "role": "assistant" }), Value::Null),
    );
    for piece in pieces(text, 7) {
        sse(
            &mut out,
            None,
            &chunk(json!({ "content": piece }), Value::Null),
        );
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        // The arguments arrive in several chunks, as real servers send them.
        let parts = pieces(arguments, 5);
        let first = parts.first().cloned().unwrap_or_default();
        sse(
            &mut out,
            None,
            &chunk(
                json!({ "tool_calls": [{ "index": index, "id": call_id(id, index), "type": "function",
                                          "function": { "name": name, "arguments": first } }] }),
                Value::Null,
            ),
        );
        for part in parts.iter().skip(1) {
            sse(
                &mut out,
                None,
                &chunk(
                    json!({ "tool_calls": [{ "index": index, "function": { "arguments": part } }] }),
                    Value::Null,
                ),
            );
        }
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    sse(&mut out, None, &chunk(json!({}), json!(finish)));
    sse(
        &mut out,
        None,
        &json!({ "id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk", "choices": [],
                 "usage": { "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output } }),
    );
    out.push_str("data: [DONE]\n\n");
    out
}

/// One `GenerateContentResponse`: text, function calls, and with `usage`
/// the finish reason and token counts.
fn gemini_chunk(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    usage: Option<(u64, u64)>,
) -> Value {
    let mut parts = Vec::new();
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        parts.push(json!({ "functionCall": { "id": call_id(id, index), "name": name, "args": input_object(arguments) } }));
    }
    let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
    let mut chunk = json!({ "candidates": [], "modelVersion": "scripted" });
    if let Some((input, output)) = usage {
        candidate["finishReason"] = json!("STOP");
        chunk["usageMetadata"] = json!({ "promptTokenCount": input, "candidatesTokenCount": output,
                                         "totalTokenCount": input + output });
    }
    chunk["candidates"] = json!([candidate]);
    chunk
}

fn gemini_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    let pieces = pieces(text, 7);
    let (last, first) = match pieces.split_last() {
        Some((last, first)) => (last.clone(), first.to_vec()),
        None => (String::new(), Vec::new()),
    };
    for piece in first {
        sse(&mut out, None, &gemini_chunk(id, &piece, &[], None));
    }
    sse(
        &mut out,
        None,
        &gemini_chunk(id, &last, calls, Some((input, output))),
    );
    out
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

/// The output items of a Responses reply.
fn responses_items(id: u64, text: &str, calls: &[(String, String)]) -> Vec<Value> {
    let mut items = Vec::new();
    if !text.is_empty() {
        items.push(json!({
            "type": "message", "id": format!("msg_{id}"), "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }],
        }));
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        items.push(json!({
            "type": "function_call", "id": format!("fc_{id}_{index}"), "call_id": call_id(id, index),
            "name": name, "arguments": arguments, "status": "completed",
        }));
    }
    items
}

fn responses_whole(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> Value {
    json!({
        "id": format!("resp_{id}"), "object": "response", "created_at": 0, "status": "completed",
        "model": "scripted", "output": responses_items(id, text, calls),
        "usage": { "input_tokens": input, "output_tokens": output, "total_tokens": input + output },
    })
}

fn responses_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    let mut sequence = 0u64;
    let mut event = |out: &mut String, mut data: Value| {
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        let name = data["type"].as_str().unwrap_or_default().to_owned();
        sse(out, Some(&name), &data);
    };
    let whole = responses_whole(id, text, calls, input, output);
    let mut created = whole.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    event(
        &mut out,
        json!({ "type": "response.created", "response": created }),
    );
    for (index, item) in responses_items(id, text, calls).into_iter().enumerate() {
        let mut opened = item.clone();
        if item["type"] == "message" {
            opened["content"] = json!([]);
            event(
                &mut out,
                json!({ "type": "response.output_item.added", "output_index": index, "item": opened }),
            );
            for piece in pieces(text, 7) {
                event(
                    &mut out,
                    json!({ "type": "response.output_text.delta", "output_index": index,
                                        "item_id": item["id"], "content_index": 0, "delta": piece }),
                );
            }
        } else {
            opened["arguments"] = json!("");
            event(
                &mut out,
                json!({ "type": "response.output_item.added", "output_index": index, "item": opened }),
            );
            for part in pieces(item["arguments"].as_str().unwrap_or_default(), 5) {
                event(
                    &mut out,
                    json!({ "type": "response.function_call_arguments.delta", "output_index": index,
                                        "item_id": item["id"], "delta": part }),
                );
            }
        }
        event(
            &mut out,
            json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
        );
    }
    event(
        &mut out,
        json!({ "type": "response.completed", "response": whole }),
    );
    out
}

fn input_object(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
}

fn anthropic_whole(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(json!({ "type": "text", "text": text }));
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        content.push(json!({ "type": "tool_use", "id": call_id(id, index), "name": name, "input": input_object(arguments) }));
    }
    json!({
        "id": format!("msg_{id}"), "type": "message", "role": "assistant", "content": content,
        "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
        "usage": { "input_tokens": input, "output_tokens": output },
    })
    .to_string()
}

/// One content block of an Anthropic stream: its start, deltas and stop.
fn anthropic_block(out: &mut String, index: usize, block: Value, deltas: Vec<Value>) {
    sse(
        out,
        Some("content_block_start"),
        &json!({ "type": "content_block_start", "index": index, "content_block": block }),
    );
    for delta in deltas {
        sse(
            out,
            Some("content_block_delta"),
            &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
        );
    }
    sse(
        out,
        Some("content_block_stop"),
        &json!({ "type": "content_block_stop", "index": index }),
    );
}

fn anthropic_stream(
    id: u64,
    text: &str,
    calls: &[(String, String)],
    input: u64,
    output: u64,
) -> String {
    let mut out = String::new();
    sse(
        &mut out,
        Some("message_start"),
        &json!({ "type": "message_start", "message": { "id": format!("msg_{id}"), "type": "message", "role": "assistant",
                 "content": [], "usage": { "input_tokens": input, "output_tokens": 1 } } }),
    );
    let mut index = 0;
    if !text.is_empty() {
        let deltas = pieces(text, 7)
            .into_iter()
            .map(|piece| json!({ "type": "text_delta", "text": piece }))
            .collect();
        anthropic_block(
            &mut out,
            index,
            json!({ "type": "text", "text": "" }),
            deltas,
        );
        index += 1;
    }
    for (n, (name, arguments)) in calls.iter().enumerate() {
        let deltas = pieces(arguments, 5)
            .into_iter()
            .map(|part| json!({ "type": "input_json_delta", "partial_json": part }))
            .collect();
        let start = json!({ "type": "tool_use", "id": call_id(id, n), "name": name, "input": {} });
        anthropic_block(&mut out, index, start, deltas);
        index += 1;
    }
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    sse(
        &mut out,
        Some("message_delta"),
        &json!({ "type": "message_delta", "delta": { "stop_reason": stop }, "usage": { "output_tokens": output } }),
    );
    sse(
        &mut out,
        Some("message_stop"),
        &json!({ "type": "message_stop" }),
    );
    out
}
