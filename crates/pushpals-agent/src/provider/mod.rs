//! Talking to language models over their real wire protocols, with retries.

mod anthropic;
mod error;
mod gemini;
mod openai;
mod responses;
pub mod retry;
mod stream;

pub use error::ProviderError;

use crate::config::{ModelConfig, Protocol};
use crate::conversation::{ModelReply, ModelRequest};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use stream::{Flow, Partial};

/// Longest error body kept from a provider.
const MAX_ERROR_BODY: usize = 2000;

/// A configured model, ready to be called. Its API key is read from the
/// environment when the client is made and is never shown.
pub struct ModelClient {
    name: String,
    config: ModelConfig,
    key: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("name", &self.name)
            .field("model", &self.config.model)
            .field("base_url", &self.config.base_url)
            .field("key", &self.key.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Why one attempt failed.
enum Attempt {
    /// Worth another try, after the wait the provider asked for if any.
    Retry(String, Option<Duration>),
    /// Not worth another try.
    Fatal(ProviderError),
}

impl ModelClient {
    /// A client for the model named `name`.
    pub fn new(name: &str, config: ModelConfig) -> Result<Self, ProviderError> {
        let key = match &config.api_key_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| ProviderError::MissingKey {
                model: name.to_owned(),
                var: var.clone(),
            })?),
        };
        // reqwest is built without a default TLS provider; ring is the
        // workspace's choice (a no-op when the binary installed it already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ProviderError::Client(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            config,
            key,
            http,
        })
    }

    /// The configured name (`fast`, `strong`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model's settings.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Asks the model; retries rate limits, server errors and dropped
    /// connections with backoff, and fails at once on a refusal.
    pub async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let span =
            tracing::info_span!("model_call", model = %self.name, model_id = %self.config.model);
        tracing::Instrument::instrument(self.complete_with_retries(request), span).await
    }

    async fn complete_with_retries(
        &self,
        request: &ModelRequest,
    ) -> Result<ModelReply, ProviderError> {
        let started = std::time::Instant::now();
        let mut retries = Vec::new();
        let attempts = self.config.max_retries.saturating_add(1);
        for attempt in 0..attempts {
            match self.attempt(request).await {
                Ok(mut reply) => {
                    reply.retries = retries;
                    reply.latency_ms =
                        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Ok(reply);
                }
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Retry(why, wait)) => {
                    if attempt + 1 == attempts {
                        return Err(ProviderError::GaveUp {
                            model: self.name.clone(),
                            attempts,
                            last: why,
                        });
                    }
                    let wait = wait.unwrap_or_else(|| retry::backoff(attempt));
                    tracing::warn!(model = %self.name, %why, ?wait, "retrying a model call");
                    retries.push(why);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(ProviderError::GaveUp {
            model: self.name.clone(),
            attempts,
            last: retries.pop().unwrap_or_default(),
        })
    }

    /// The endpoint; Gemini names the model and streaming in the URL.
    fn url(&self, stream: bool) -> String {
        let base = self.config.base_url.trim_end_matches('/');
        match self.config.protocol {
            Protocol::Openai => format!("{base}/chat/completions"),
            Protocol::Anthropic => format!("{base}/v1/messages"),
            Protocol::OpenaiResponses => format!("{base}/responses"),
            Protocol::Gemini if stream => format!(
                "{base}/v1beta/models/{}:streamGenerateContent?alt=sse",
                self.config.model
            ),
            Protocol::Gemini => {
                format!("{base}/v1beta/models/{}:generateContent", self.config.model)
            }
        }
    }

    async fn attempt(&self, request: &ModelRequest) -> Result<ModelReply, Attempt> {
        let stream = self.config.stream;
        let body = wire_body(&self.config, request, stream);
        let mut http = self
            .http
            .post(self.url(stream))
            .timeout(self.config.timeout())
            .json(&body);
        http = match (self.config.protocol, &self.key) {
            (Protocol::Openai | Protocol::OpenaiResponses, Some(key)) => http.bearer_auth(key),
            (Protocol::Openai | Protocol::OpenaiResponses, None) => http,
            (Protocol::Gemini, Some(key)) => http.header("x-goog-api-key", key),
            (Protocol::Gemini, None) => http,
            (Protocol::Anthropic, key) => {
                let http = http.header("anthropic-version", anthropic::API_VERSION);
                match key {
                    Some(key) => http.header("x-api-key", key),
                    None => http,
                }
            }
        };
        let response = http.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.refusal(response).await);
        }
        let parsed = if stream {
            match self.config.protocol {
                Protocol::Openai => read_stream::<openai::Chunks>(response).await?,
                Protocol::Anthropic => read_stream::<anthropic::Events>(response).await?,
                Protocol::OpenaiResponses => read_stream::<responses::Events>(response).await?,
                Protocol::Gemini => read_stream::<gemini::Chunks>(response).await?,
            }
        } else {
            let value: Value = response
                .json()
                .await
                .map_err(|e| Attempt::Retry(format!("reading the reply failed: {e}"), None))?;
            match self.config.protocol {
                Protocol::Openai => openai::parse_reply(&value),
                Protocol::Anthropic => anthropic::parse_reply(&value),
                Protocol::OpenaiResponses => responses::parse_reply(&value),
                Protocol::Gemini => gemini::parse_reply(&value),
            }
        };
        parsed.map_err(|detail| {
            Attempt::Fatal(ProviderError::Protocol {
                model: self.name.clone(),
                detail,
            })
        })
    }

    /// Turns an error status into a retry or a refusal with the provider's
    /// own message.
    async fn refusal(&self, response: reqwest::Response) -> Attempt {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let wait = retry::requested_wait(
            header("retry-after").as_deref(),
            header("retry-after-ms").as_deref(),
        );
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|body| error_message(&body))
            .unwrap_or_else(|| cut(&text));
        if retry::retryable(status) {
            Attempt::Retry(format!("{status}: {message}"), wait)
        } else {
            Attempt::Fatal(ProviderError::Rejected {
                model: self.name.clone(),
                status,
                message,
            })
        }
    }
}

impl ModelClient {
    /// Sends a request body written by someone else (an external agent, via
    /// the gateway) to this model's endpoint with the real key, once, and
    /// hands back the provider's response as it is. `headers` are the
    /// client's protocol headers worth keeping (`anthropic-version`,
    /// `anthropic-beta`); `stream` picks Gemini's streaming endpoint.
    pub async fn send_raw(
        &self,
        body: &Value,
        headers: &[(&str, String)],
        stream: bool,
    ) -> Result<reqwest::Response, String> {
        let mut http = self
            .http
            .post(self.url(stream))
            .timeout(self.config.timeout())
            .json(body);
        for (name, value) in headers {
            http = http.header(*name, value);
        }
        http = match (self.config.protocol, &self.key) {
            (Protocol::Openai | Protocol::OpenaiResponses, Some(key)) => http.bearer_auth(key),
            (Protocol::Anthropic, Some(key)) => http.header("x-api-key", key),
            (Protocol::Gemini, Some(key)) => http.header("x-goog-api-key", key),
            (_, None) => http,
        };
        if self.config.protocol == Protocol::Anthropic
            && !headers.iter().any(|(name, _)| *name == "anthropic-version")
        {
            http = http.header("anthropic-version", anthropic::API_VERSION);
        }
        http.send().await.map_err(|e| match transport(&e) {
            Attempt::Retry(why, _) => why,
            Attempt::Fatal(error) => error.to_string(),
        })
    }
}

/// The request body for `config`'s protocol.
pub(crate) fn wire_body(config: &ModelConfig, request: &ModelRequest, stream: bool) -> Value {
    match config.protocol {
        Protocol::Openai => openai::body(config, request, stream),
        Protocol::Anthropic => anthropic::body(config, request, stream),
        Protocol::OpenaiResponses => responses::body(config, request, stream),
        Protocol::Gemini => gemini::body(config.max_output_tokens, request),
    }
}

/// Reads a reply of `protocol` from its bytes as they came over the wire,
/// streamed (server-sent events) or whole: what the model said and used.
pub async fn read_reply(
    protocol: Protocol,
    streamed: bool,
    bytes: &[u8],
) -> Result<ModelReply, String> {
    if !streamed {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the reply is not JSON: {e}"))?;
        return match protocol {
            Protocol::Openai => openai::parse_reply(&value),
            Protocol::Anthropic => anthropic::parse_reply(&value),
            Protocol::OpenaiResponses => responses::parse_reply(&value),
            Protocol::Gemini => gemini::parse_reply(&value),
        };
    }
    async fn replay<P: Partial>(bytes: &[u8]) -> Result<ModelReply, String> {
        let chunk: Result<Vec<u8>, std::convert::Infallible> = Ok(bytes.to_vec());
        let mut events = futures_util::stream::iter([chunk]).eventsource();
        let mut partial = P::default();
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| e.to_string())?;
            if partial.feed(&event.event, &event.data)? == Flow::Done {
                break;
            }
        }
        partial.finish()
    }
    match protocol {
        Protocol::Openai => replay::<openai::Chunks>(bytes).await,
        Protocol::Anthropic => replay::<anthropic::Events>(bytes).await,
        Protocol::OpenaiResponses => replay::<responses::Events>(bytes).await,
        Protocol::Gemini => replay::<gemini::Chunks>(bytes).await,
    }
}

/// The provider's message in an error body: `{"error": {"message"}}`
/// (OpenAI and Anthropic), `{"error": "..."}` or `{"message": "..."}`
/// (some compatible servers).
fn error_message(body: &Value) -> Option<String> {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .or_else(|| body["message"].as_str())
        .map(str::to_owned)
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_owned()
}

fn transport(error: &reqwest::Error) -> Attempt {
    let what = if error.is_timeout() {
        "the request timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    Attempt::Retry(format!("{what}: {error}"), None)
}

async fn read_stream<P: Partial>(
    response: reqwest::Response,
) -> Result<Result<ModelReply, String>, Attempt> {
    let mut events = response.bytes_stream().eventsource();
    let mut partial = P::default();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| Attempt::Retry(format!("the stream broke: {e}"), None))?;
        match partial.feed(&event.event, &event.data) {
            Ok(Flow::More) => {}
            Ok(Flow::Done) => return Ok(partial.finish()),
            // An error event inside a 200 stream: usually an overload.
            Err(message) => {
                return Err(Attempt::Retry(format!("the stream said: {message}"), None));
            }
        }
    }
    // The server closed without a terminator: take what came if it is whole.
    Ok(partial.finish())
}
