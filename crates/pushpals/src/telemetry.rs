//! Logs and traces: the log format, the level filter (`PUSHPALS_LOG`), and,
//! when `[telemetry] otlp_endpoint` is set, spans sent over OTLP/HTTP.

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use pushpals_orchestrator::{LogFormat, TelemetrySettings};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes the spans still queued when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber: logs on standard error (text, or JSON
/// with `log_format = "json"` or `PUSHPALS_LOG_FORMAT=json`), and an
/// OpenTelemetry layer when an OTLP endpoint is configured.
pub fn init(settings: Option<&TelemetrySettings>) -> Result<Telemetry> {
    let filter = EnvFilter::try_from_env("PUSHPALS_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,pushpals=info"));
    let format = match std::env::var("PUSHPALS_LOG_FORMAT") {
        Ok(text) => Some(LogFormat::parse(&text).with_context(|| {
            format!("PUSHPALS_LOG_FORMAT={text:?} is not known: use \"text\" or \"json\"")
        })?),
        Err(_) => settings.and_then(|s| s.log_format),
    };
    let logs = match format {
        Some(LogFormat::Json) => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        // Colours only on a terminal: a log file gets plain text.
        Some(LogFormat::Text) | None => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = match settings.and_then(|s| s.otlp_endpoint.as_deref()) {
        Some(endpoint) => {
            let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpJson)
                .with_endpoint(&url)
                .build()
                .with_context(|| format!("cannot export spans to {url}"))?;
            let name = settings
                .and_then(|s| s.service_name.clone())
                .unwrap_or_else(|| "pushpals".to_owned());
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(name).build())
                    .build(),
            )
        }
        None => None,
    };
    let spans = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("pushpals")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .try_init()
        .context("cannot install the log subscriber")?;
    Ok(Telemetry { provider })
}
