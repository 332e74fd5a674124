//! Each task is one trace: its span hangs from a remote parent whose trace
//! id comes from the task id ([`TaskId::trace_ids`]), so the `trace_id` in
//! the task's `task_created` event finds its spans, and a span's trace id
//! finds the task. Without an OpenTelemetry layer this does nothing.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use pushpals_core::TaskId;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the task's trace.
pub(crate) fn join_task_trace(span: &tracing::Span, task_id: &TaskId) {
    let (trace, parent) = task_id.trace_ids();
    let context = SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(parent),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(context));
}
