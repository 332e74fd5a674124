//! Prometheus metrics: what the server is doing, for the operator.
//!
//! Most series are folded from the committed event stream ([`events`]), so
//! they count exactly what the audit log holds; gauges of stored state
//! (tasks by state, pending approvals) are read from the store at scrape
//! time; request, write and stream figures are measured where they happen.
//! Labels never carry secrets: models, check names, decisions, routes
//! (templates, never concrete paths or queries) and states only.
//!
//! Over 400 lines: the registry of every series, each registered once with
//! its help text, and the scrape that refreshes the stored gauges; folding
//! events is `events.rs`.

mod events;

pub use events::follow_events;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use pushpals_core::TaskState;
use pushpals_orchestrator::Orchestrator;
use pushpals_store::{StoreResult, WriteObserver};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// A histogram family with our constructor.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds, from 1 ms to about 9 hours.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.5, 16))
}

/// Counts, from 1 to about 1,000.
fn counts() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// A label set of one label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Named {
    pub(crate) name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabel {
    pub(crate) state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DecisionLabel {
    pub(crate) decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ApprovalLabels {
    pub(crate) action: String,
    pub(crate) decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabel {
    pub(crate) model: String,
}

/// A gateway call: the model, the protocol the agent spoke, and the
/// protocol it was translated to (`none` when passed through).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GatewayLabels {
    pub(crate) model: String,
    pub(crate) protocol: String,
    pub(crate) translated_to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TokenLabels {
    pub(crate) model: String,
    pub(crate) direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: String,
}

/// Every series the server exports.
pub struct Metrics {
    registry: Registry,
    pub(crate) tasks: Family<StateLabel, Gauge>,
    pub(crate) queue_depth: Gauge,
    pub(crate) approvals_pending: Gauge,
    pub(crate) task_seconds: Histograms<StateLabel>,
    pub(crate) command_seconds: Histogram,
    pub(crate) check_seconds: Histograms<Named>,
    pub(crate) commands: Family<DecisionLabel, Counter>,
    pub(crate) approval_seconds: Histograms<ApprovalLabels>,
    pub(crate) model_calls: Family<ModelLabel, Counter>,
    pub(crate) model_seconds: Histograms<ModelLabel>,
    pub(crate) model_tokens: Family<TokenLabels, Counter>,
    pub(crate) model_cost: Family<ModelLabel, Counter<f64, AtomicU64>>,
    pub(crate) gateway_first_byte: Histograms<GatewayLabels>,
    pub(crate) events: Family<Named, Counter>,
    write_seconds: Histogram,
    commit_seconds: Histogram,
    batch_requests: Histogram,
    batch_events: Histogram,
    batch_failures: Counter,
    pub(crate) sse_subscribers: Gauge,
    sandbox_start: Gauge<f64, AtomicU64>,
    worker_seen: Family<Named, Gauge<f64, AtomicU64>>,
    worker_runs: Family<Named, Gauge>,
    worker_busy: Family<Named, Gauge<f64, AtomicU64>>,
    worker_running: Family<Named, Gauge>,
    requests: Family<RouteLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    /// When each task seen created while serving was created, to time it.
    pub(crate) created: Mutex<HashMap<String, String>>,
    /// When each pending approval was asked for, by approval id.
    pub(crate) asked: Mutex<HashMap<i64, String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series, registered and at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pushpals");
        let m = Self {
            tasks: Family::default(),
            queue_depth: Gauge::default(),
            approvals_pending: Gauge::default(),
            task_seconds: Family::new_with_constructor(seconds),
            command_seconds: seconds(),
            check_seconds: Family::new_with_constructor(seconds),
            commands: Family::default(),
            approval_seconds: Family::new_with_constructor(seconds),
            model_calls: Family::default(),
            model_seconds: Family::new_with_constructor(seconds),
            model_tokens: Family::default(),
            model_cost: Family::default(),
            gateway_first_byte: Family::new_with_constructor(seconds),
            events: Family::default(),
            write_seconds: seconds(),
            commit_seconds: seconds(),
            batch_requests: counts(),
            batch_events: counts(),
            batch_failures: Counter::default(),
            sse_subscribers: Gauge::default(),
            sandbox_start: Gauge::default(),
            worker_seen: Family::default(),
            worker_runs: Family::default(),
            worker_busy: Family::default(),
            worker_running: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds),
            created: Mutex::new(HashMap::new()),
            asked: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("tasks", "Tasks by state", m.tasks.clone());
        r.register(
            "worker_heartbeat_age_seconds",
            "Seconds since each enrolled worker last reported",
            m.worker_seen.clone(),
        );
        r.register(
            "worker_runs",
            "Task runs each connected worker ended since the server started",
            m.worker_runs.clone(),
        );
        r.register(
            "worker_busy_seconds",
            "Seconds each connected worker held task runs since the server started",
            m.worker_busy.clone(),
        );
        r.register(
            "worker_running",
            "Task runs each connected worker holds now",
            m.worker_running.clone(),
        );
        r.register(
            "queue_depth",
            "Tasks queued for a worker slot",
            m.queue_depth.clone(),
        );
        r.register(
            "approvals_pending",
            "Approvals waiting for a decision",
            m.approvals_pending.clone(),
        );
        r.register(
            "task_duration_seconds",
            "From creation to a final state, by that state",
            m.task_seconds.clone(),
        );
        r.register(
            "command_duration_seconds",
            "Sandboxed commands, start to end",
            m.command_seconds.clone(),
        );
        r.register(
            "check_duration_seconds",
            "Checks, by check name",
            m.check_seconds.clone(),
        );
        r.register(
            "commands",
            "Commands judged by policy, by decision",
            m.commands.clone(),
        );
        r.register(
            "approval_decision_seconds",
            "From asking to the decision",
            m.approval_seconds.clone(),
        );
        r.register(
            "model_calls",
            "Model calls, by configured model",
            m.model_calls.clone(),
        );
        r.register(
            "model_call_duration_seconds",
            "Model calls with their retries",
            m.model_seconds.clone(),
        );
        r.register(
            "model_tokens",
            "Tokens, by model and direction",
            m.model_tokens.clone(),
        );
        r.register(
            "model_cost_dollars",
            "Cost of model calls, by model",
            m.model_cost.clone(),
        );
        r.register(
            "gateway_first_byte_seconds",
            "External agents' model calls through the gateway: time to the model's first byte, by model, the agent's protocol and the protocol translated to",
            m.gateway_first_byte.clone(),
        );
        r.register(
            "events",
            "Events committed to the audit log, by kind",
            m.events.clone(),
        );
        r.register(
            "event_write_seconds",
            "A write as its caller waits for it: queue and commit",
            m.write_seconds.clone(),
        );
        r.register(
            "event_commit_seconds",
            "One group commit on the writer thread",
            m.commit_seconds.clone(),
        );
        r.register(
            "event_batch_requests",
            "Writes per group commit",
            m.batch_requests.clone(),
        );
        r.register(
            "event_batch_events",
            "Events per group commit",
            m.batch_events.clone(),
        );
        r.register(
            "event_batch_failures",
            "Group commits that rolled back",
            m.batch_failures.clone(),
        );
        r.register(
            "sse_subscribers",
            "Open event streams",
            m.sse_subscribers.clone(),
        );
        r.register(
            "sandbox_start_seconds",
            "A `true` in the sandbox, start to end (probed at most every 30 s)",
            m.sandbox_start.clone(),
        );
        r.register(
            "http_requests",
            "API requests, by route template and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "API request latency",
            m.request_seconds.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts one served request; `route` is the matched template.
    pub(crate) fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status: status.to_string(),
        };
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// The text exposition, after reading the stored gauges and probing
    /// the sandbox (at most every 30 seconds).
    pub async fn render(&self, orchestrator: &Orchestrator) -> StoreResult<String> {
        if let Some(took) = orchestrator.sandbox_start_time().await {
            self.sandbox_start.set(took.as_secs_f64());
        }
        let store = orchestrator.store();
        let counts = store.task_counts().await?;
        self.tasks.clear();
        self.queue_depth.set(0);
        // Every state shows, at zero when no task is in it.
        for state in TaskState::ALL {
            self.tasks
                .get_or_create(&StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(0);
        }
        for (state, count) in counts {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            if state == "queued" {
                self.queue_depth.set(count);
            }
            self.tasks.get_or_create(&StateLabel { state }).set(count);
        }
        self.worker_seen.clear();
        let now = time::OffsetDateTime::now_utc();
        for worker in store.workers().await? {
            let seen = worker
                .last_seen
                .filter(|_| worker.revoked_at.is_none())
                .and_then(|at| pushpals_core::timestamp::parse(&at).ok());
            if let Some(seen) = seen {
                self.worker_seen
                    .get_or_create(&Named { name: worker.name })
                    .set((now - seen).as_seconds_f64().max(0.0));
            }
        }
        self.worker_runs.clear();
        self.worker_busy.clear();
        self.worker_running.clear();
        for worker in orchestrator.dispatch().activity() {
            let name = Named { name: worker.name };
            self.worker_runs
                .get_or_create(&name)
                .set(i64::try_from(worker.runs).unwrap_or(i64::MAX));
            self.worker_busy.get_or_create(&name).set(worker.busy_secs);
            self.worker_running
                .get_or_create(&name)
                .set(i64::try_from(worker.running.len()).unwrap_or(i64::MAX));
        }
        let pending = store.pending_approval_count().await?;
        self.approvals_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        Ok(text)
    }
}

impl WriteObserver for Metrics {
    fn batch(&self, requests: usize, events: usize, took: Duration, committed: bool) {
        self.batch_requests.observe(requests as f64);
        self.batch_events.observe(events as f64);
        self.commit_seconds.observe(took.as_secs_f64());
        if !committed {
            self.batch_failures.inc();
        }
    }

    fn write(&self, took: Duration) {
        self.write_seconds.observe(took.as_secs_f64());
    }
}

/// Keeps the SSE gauge right however a stream ends.
pub(crate) struct Subscribed(Gauge);

impl Subscribed {
    pub(crate) fn new(metrics: &Metrics) -> Self {
        metrics.sse_subscribers.inc();
        Self(metrics.sse_subscribers.clone())
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.dec();
    }
}
