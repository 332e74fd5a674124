//! Forwarding one call: authenticate, check the budget, put the real model
//! and key in, stream the answer back, count it, report it.
//!
//! Over 400 lines: one call's path from the agent's request to its recorded
//! answer, streamed or whole; translation between protocols is in
//! `translate`.

use super::errors::error;
use super::routes::ClientProtocol;
use super::{Gateway, GatewayCall, Refusal, translate};
use crate::config::Protocol;
use crate::conversation::ModelReply;
use crate::provider::{ModelClient, ProviderError, read_reply};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use pushpals_core::payload::{CalledTool, ModelCall};
use pushpals_core::{TaskId, Usage};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Most bytes of a response kept for counting and the event's blob; the
/// agent still gets all of it.
const MAX_KEPT_RESPONSE: usize = 8 << 20;

/// The token a client presents, in whichever header its protocol uses.
fn token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(bearer) = header("authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) {
        return Some(bearer.trim());
    }
    header("x-api-key")
        .or_else(|| header("x-goog-api-key"))
        .or_else(|| query?.split('&').find_map(|pair| pair.strip_prefix("key=")))
        .map(str::trim)
}

/// Finds the caller's task, or the answer that refuses it.
pub(crate) fn admit(
    gateway: &Gateway,
    protocol: ClientProtocol,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(String, TaskId, Arc<ModelClient>), Box<Response>> {
    let Some(token) = token(headers, query) else {
        return Err(Box::new(error(
            protocol,
            StatusCode::UNAUTHORIZED,
            "no Push Pals gateway token; the agent's configuration must carry the task's token as its API key",
        )));
    };
    match gateway.admit(token) {
        Ok((task, model)) => Ok((token.to_owned(), task, model)),
        Err(Refusal::Unauthorized) => Err(Box::new(error(
            protocol,
            StatusCode::UNAUTHORIZED,
            "this gateway token is not valid (the task ended, or the token was never issued)",
        ))),
        // Not 429: clients retry those, and a spent budget does not refill.
        Err(Refusal::BudgetSpent(task, why)) => {
            // A refusal decides: it is in the task's audit log too.
            gateway.report(GatewayCall {
                task,
                detail: ModelCall {
                    via: Some("gateway".into()),
                    protocol: Some(protocol.as_str().to_owned()),
                    status: Some(400),
                    ..ModelCall::default()
                },
                usage: Usage::default(),
                request: Vec::new(),
                response: Vec::new(),
                refused: Some(why.clone()),
            });
            Err(Box::new(error(protocol, StatusCode::BAD_REQUEST, &why)))
        }
    }
}

/// What the client speaks, as a model protocol the gateway can forward.
fn provider_protocol(protocol: ClientProtocol) -> Option<Protocol> {
    match protocol {
        ClientProtocol::OpenaiChat => Some(Protocol::Openai),
        ClientProtocol::Anthropic => Some(Protocol::Anthropic),
        ClientProtocol::OpenaiResponses => Some(Protocol::OpenaiResponses),
        ClientProtocol::Gemini => Some(Protocol::Gemini),
    }
}

/// What the URL says of a call: Gemini names its model and whether it
/// streams in the path; the other protocols say it in the body.
#[derive(Debug, Clone, Default)]
pub(crate) struct FromUrl {
    /// The model the agent asked for.
    pub model: Option<String>,
    /// Streamed (`streamGenerateContent`).
    pub stream: Option<bool>,
}

/// Forwards one call of `protocol`.
pub(crate) async fn forward(
    gateway: &Arc<Gateway>,
    protocol: ClientProtocol,
    headers: &HeaderMap,
    query: Option<&str>,
    url: FromUrl,
    body: Bytes,
) -> Response {
    let (token, task, model) = match admit(gateway, protocol, headers, query) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let wire = model.config().protocol;
    let mut request: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return error(
                protocol,
                StatusCode::BAD_REQUEST,
                "the request body is not a JSON object",
            );
        }
    };
    let streamed = url
        .stream
        .unwrap_or_else(|| request["stream"].as_bool().unwrap_or(false));
    let asked_model = url
        .model
        .clone()
        .unwrap_or_else(|| request["model"].as_str().unwrap_or_default().to_owned());
    if provider_protocol(protocol) != Some(wire) {
        let call = Call {
            gateway: Arc::clone(gateway),
            token,
            task,
            model: Arc::clone(&model),
            protocol,
            asked_model,
            streamed,
            request: body.to_vec(),
            started: Instant::now(),
        };
        return translated(call, &request).await;
    }
    if wire != Protocol::Gemini {
        request["model"] = json!(model.config().model);
    }
    if streamed && wire == Protocol::Openai {
        // Usage comes only when asked for; the gateway must count it.
        request["stream_options"]["include_usage"] = json!(true);
    }
    let kept_headers: Vec<(&str, String)> = ["anthropic-version", "anthropic-beta"]
        .into_iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name, value.to_owned()))
        })
        .collect();
    let call = Call {
        gateway: Arc::clone(gateway),
        token,
        task,
        model: Arc::clone(&model),
        protocol,
        asked_model,
        streamed,
        request: body.to_vec(),
        started: Instant::now(),
    };
    let upstream = match model.send_raw(&request, &kept_headers, streamed).await {
        Ok(upstream) => upstream,
        Err(why) => {
            call.finish(None, 0, Vec::new(), Some(why.clone())).await;
            return error(
                protocol,
                StatusCode::BAD_GATEWAY,
                &format!("the model {:?} cannot be reached: {why}", model.name()),
            );
        }
    };
    let status = upstream.status().as_u16();
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    let first_byte_ms = millis(call.started);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut stream = upstream.bytes_stream();
        let mut broken = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    let room = MAX_KEPT_RESPONSE.saturating_sub(kept.len());
                    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    if sender.send(Ok(bytes)).await.is_err() {
                        broken = Some("the agent stopped reading".to_owned());
                        break;
                    }
                }
                Err(e) => {
                    broken = Some(format!("the provider's stream broke: {e}"));
                    let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            }
        }
        call.finish(Some(status), first_byte_ms, kept, broken).await;
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// A call whose agent speaks another protocol than its model: read into
/// the neutral conversation, the model called in its own, the reply
/// written back in the agent's.
async fn translated(call: Call, request: &Value) -> Response {
    let protocol = call.protocol;
    let conversation = match translate::read::request(protocol, request) {
        Ok(conversation) => conversation,
        Err(why) => {
            return error(
                protocol,
                StatusCode::BAD_REQUEST,
                &format!("the request cannot be translated: {why}"),
            );
        }
    };
    let reply = match call.model.complete(&conversation).await {
        Ok(reply) => reply,
        Err(failure) => {
            let status = match &failure {
                ProviderError::Rejected { status, .. } => {
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            let message = failure.to_string();
            let wire = call.model.config().protocol;
            call.report(
                None,
                Some(status.as_u16()),
                0,
                Vec::new(),
                Some(message.clone()),
                Some(wire),
            );
            return error(protocol, status, &message);
        }
    };
    let model_id = call.model.config().model.clone();
    let id = format!("pp_{}", millis(call.started));
    let (body, content_type) = if call.streamed {
        (
            translate::write::stream(protocol, &reply, &model_id, &id),
            "text/event-stream",
        )
    } else {
        (
            translate::write::whole(protocol, &reply, &model_id, &id).to_string(),
            "application/json",
        )
    };
    let first_byte_ms = millis(call.started);
    let wire = call.model.config().protocol;
    let bytes = body.into_bytes();
    call.report(
        Some(&reply),
        Some(200),
        first_byte_ms,
        bytes.clone(),
        None,
        Some(wire),
    );
    let mut response = Response::new(Body::from(bytes));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One call in flight.
struct Call {
    gateway: Arc<Gateway>,
    token: String,
    task: TaskId,
    model: Arc<ModelClient>,
    protocol: ClientProtocol,
    asked_model: String,
    streamed: bool,
    request: Vec<u8>,
    started: Instant,
}

impl Call {
    /// Counts and reports the call once its answer is through.
    async fn finish(
        self,
        status: Option<u16>,
        first_byte_ms: u64,
        response: Vec<u8>,
        broken: Option<String>,
    ) {
        let succeeded = status.is_some_and(|s| (200..300).contains(&s));
        let reply = if succeeded {
            read_reply(self.model.config().protocol, self.streamed, &response)
                .await
                .ok()
        } else {
            None
        };
        self.report(
            reply.as_ref(),
            status,
            first_byte_ms,
            response,
            broken,
            None,
        );
    }

    /// Counts the call and hands it to the orchestrator. `translated_to`:
    /// the model's protocol, when it differs from the agent's.
    fn report(
        self,
        reply: Option<&ModelReply>,
        status: Option<u16>,
        first_byte_ms: u64,
        response: Vec<u8>,
        broken: Option<String>,
        translated_to: Option<Protocol>,
    ) {
        let config = self.model.config();
        let succeeded = status.is_some_and(|s| (200..300).contains(&s));
        let (input, output) = reply
            .as_ref()
            .map_or((0, 0), |r| (r.usage.input_tokens, r.usage.output_tokens));
        let usage = Usage {
            model_calls: 1,
            input_tokens: input,
            output_tokens: output,
            cost_micros: config.cost_micros(input, output),
        };
        self.gateway.charge(&self.token, usage);
        let error = match broken {
            Some(why) => Some(why),
            None if !succeeded => {
                Some(String::from_utf8_lossy(&response[..response.len().min(2000)]).into_owned())
            }
            None => None,
        };
        let detail = ModelCall {
            via: Some("gateway".into()),
            protocol: Some(self.protocol.as_str().to_owned()),
            model: self.model.name().to_owned(),
            model_id: Some(config.model.clone()),
            asked_model: Some(self.asked_model.clone()).filter(|m| !m.is_empty()),
            stream: Some(self.streamed),
            status,
            request_bytes: Some(self.request.len() as u64),
            response_bytes: Some(response.len() as u64),
            first_byte_ms: Some(first_byte_ms),
            latency_ms: Some(millis(self.started)),
            input_tokens: input,
            output_tokens: output,
            cost_micros: usage.cost_micros,
            translated_to: translated_to.map(|wire| wire.as_str().to_owned()),
            tool_calls: reply
                .map(|r| {
                    r.tool_calls
                        .iter()
                        .map(|c| CalledTool::named(&c.name))
                        .collect()
                })
                .unwrap_or_default(),
            error,
            ..ModelCall::default()
        };
        self.gateway.report(GatewayCall {
            task: self.task,
            detail,
            usage,
            request: self.request,
            response,
            refused: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_token_is_found_in_each_protocols_place() {
        assert_eq!(
            token(&headers(&[("authorization", "Bearer ppgw-1")]), None),
            Some("ppgw-1")
        );
        assert_eq!(
            token(&headers(&[("x-api-key", "ppgw-2")]), None),
            Some("ppgw-2")
        );
        assert_eq!(
            token(&headers(&[("x-goog-api-key", "ppgw-3")]), None),
            Some("ppgw-3")
        );
        assert_eq!(
            token(&HeaderMap::new(), Some("alt=sse&key=ppgw-4")),
            Some("ppgw-4")
        );
        assert_eq!(token(&HeaderMap::new(), Some("alt=sse")), None);
        assert_eq!(token(&headers(&[("authorization", "Basic x")]), None), None);
    }
}
