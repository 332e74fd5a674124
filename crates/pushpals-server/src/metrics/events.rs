//! Folds committed events into metrics.

use super::{
    ApprovalLabels, DecisionLabel, GatewayLabels, Metrics, ModelLabel, Named, StateLabel,
    TokenLabels,
};
use pushpals_core::Event;
use pushpals_core::payload::{
    ApprovalDecided, ApprovalRequested, CommandFinished, ModelCall, PolicyDecision, StateChanged,
};
use pushpals_store::{EventQuery, Store};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Follows the store's committed events into `metrics` until the store
/// closes; a lagging subscriber catches up from the store, so no event is
/// counted twice or missed.
pub async fn follow_events(store: Store, metrics: Arc<Metrics>) {
    let mut live = store.subscribe();
    let mut last = store.last_event_id().await.unwrap_or(0);
    loop {
        match live.recv().await {
            Ok(event) => {
                if event.id > last {
                    last = event.id;
                    metrics.observe(&event);
                }
            }
            Err(RecvError::Lagged(_)) => loop {
                let page = store
                    .events(EventQuery {
                        after: last,
                        task_id: None,
                        limit: Some(1000),
                    })
                    .await
                    .unwrap_or_default();
                let Some(newest) = page.last().map(|e| e.id) else {
                    break;
                };
                for event in &page {
                    metrics.observe(event);
                }
                last = newest;
            },
            Err(RecvError::Closed) => return,
        }
    }
}

/// Seconds between two RFC 3339 times, when both parse and run forward.
fn between(from: &str, to: &str) -> Option<f64> {
    let from = pushpals_core::timestamp::parse(from).ok()?;
    let to = pushpals_core::timestamp::parse(to).ok()?;
    let seconds = (to - from).as_seconds_f64();
    (seconds >= 0.0).then_some(seconds)
}

impl Metrics {
    /// Counts one committed event.
    pub fn observe(&self, event: &Event) {
        self.events
            .get_or_create(&Named {
                name: event.kind.clone(),
            })
            .inc();
        match event.kind.as_str() {
            "task_created" => {
                if let (Some(task), Ok(mut created)) = (&event.task_id, self.created.lock()) {
                    created.insert(task.clone(), event.time.clone());
                }
            }
            "state_changed" => {
                let Some(changed) = event.read::<StateChanged>() else {
                    return;
                };
                if !changed.to.is_final() {
                    return;
                }
                let since = event
                    .task_id
                    .as_ref()
                    .and_then(|task| self.created.lock().ok()?.remove(task));
                if let Some(seconds) = since.and_then(|since| between(&since, &event.time)) {
                    self.task_seconds
                        .get_or_create(&StateLabel {
                            state: changed.to.as_str().to_owned(),
                        })
                        .observe(seconds);
                }
            }
            "command_finished" => {
                let Some(finished) = event.read::<CommandFinished>() else {
                    return;
                };
                let Some(ms) = finished.duration_ms else {
                    return;
                };
                let seconds = ms as f64 / 1000.0;
                self.command_seconds.observe(seconds);
                if let Some(check) = finished.step.strip_prefix("check:") {
                    self.check_seconds
                        .get_or_create(&Named {
                            name: check.to_owned(),
                        })
                        .observe(seconds);
                }
            }
            "policy_decision" => {
                let Some(judged) = event.read::<PolicyDecision>() else {
                    return;
                };
                let decision = if judged.preapproved {
                    Some("preapproved".to_owned())
                } else {
                    judged.decision
                };
                if let Some(decision) = decision {
                    self.commands
                        .get_or_create(&DecisionLabel { decision })
                        .inc();
                }
            }
            "approval_requested" => {
                if let (Some(asked), Ok(mut times)) =
                    (event.read::<ApprovalRequested>(), self.asked.lock())
                {
                    times.insert(asked.approval_id, event.time.clone());
                }
            }
            "approval_decided" => {
                let Some(decided) = event.read::<ApprovalDecided>() else {
                    return;
                };
                let since = self
                    .asked
                    .lock()
                    .ok()
                    .and_then(|mut times| times.remove(&decided.approval_id));
                let labels = ApprovalLabels {
                    action: decided.action.as_str().to_owned(),
                    decision: decided.decision.as_str().to_owned(),
                };
                if let Some(seconds) = since.and_then(|since| between(&since, &event.time)) {
                    self.approval_seconds
                        .get_or_create(&labels)
                        .observe(seconds);
                }
            }
            "model_call" => {
                if let Some(call) = event.read::<ModelCall>() {
                    self.model_call(&call);
                }
            }
            _ => {}
        }
    }

    fn model_call(&self, call: &ModelCall) {
        let model = if call.model.is_empty() {
            "unknown".to_owned()
        } else {
            call.model.clone()
        };
        let labels = ModelLabel {
            model: model.clone(),
        };
        self.model_calls.get_or_create(&labels).inc();
        if let Some(ms) = call.latency_ms {
            self.model_seconds
                .get_or_create(&labels)
                .observe(ms as f64 / 1000.0);
        }
        for (direction, tokens) in [("input", call.input_tokens), ("output", call.output_tokens)] {
            self.model_tokens
                .get_or_create(&TokenLabels {
                    model: model.clone(),
                    direction: direction.to_owned(),
                })
                .inc_by(tokens);
        }
        self.model_cost
            .get_or_create(&labels)
            .inc_by(call.cost_micros as f64 / 1_000_000.0);
        if call.via.as_deref() == Some("gateway")
            && let Some(ms) = call.first_byte_ms
        {
            let gateway = GatewayLabels {
                model,
                protocol: call.protocol.clone().unwrap_or_else(|| "unknown".into()),
                translated_to: call.translated_to.clone().unwrap_or_else(|| "none".into()),
            };
            self.gateway_first_byte
                .get_or_create(&gateway)
                .observe(ms as f64 / 1000.0);
        }
    }
}
