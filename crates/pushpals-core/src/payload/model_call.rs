//! The `model_call` payload: one call of a model, by the built-in agent (a
//! step or a summary), the planner, or an external agent through the
//! gateway. One type for the three writers and every reader (metrics, chat
//! status, the companion); the fields one writer does not know are absent.

use super::EventPayload;
use crate::event::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `model_call`: a model was called.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    /// The named model (`[models.NAME]`).
    pub model: String,
    /// Why the built-in agent or the planner called: `step`, `summary` or
    /// `plan`; absent for a call through the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `gateway` for an external agent's call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Tokens sent.
    #[serde(default)]
    pub input_tokens: u64,
    /// Tokens received.
    #[serde(default)]
    pub output_tokens: u64,
    /// What it cost, in millionths of the configured currency.
    #[serde(default)]
    pub cost_micros: u64,
    /// From the request to the whole answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Why earlier attempts were tried again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// The reply's text, redacted and cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The tools the reply called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<CalledTool>,
    /// The built-in agent's step it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// Messages in the conversation sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Characters of the prompt and the conversation sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_chars: Option<u64>,
    /// Why the model stopped (`end_turn`, `tool_use`, `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// The gateway: the protocol the agent spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The gateway: the protocol of the model it was translated to, when it
    /// differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translated_to: Option<String>,
    /// The gateway: the provider's id of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The gateway: the model the agent asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_model: Option<String>,
    /// The gateway: whether the answer was streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// The gateway: the provider's HTTP status (absent: no answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The gateway: the request's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// The gateway: the answer's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// The gateway: until the answer's first byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    /// The gateway: what went wrong (a broken stream, the provider's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The gateway: the blob holding the request body, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_blob: Option<String>,
    /// The gateway: the blob holding the answer's body, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_blob: Option<String>,
    /// The planner: the plan it was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The planner: which attempt (a plan found invalid is asked again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The planner: the plan submitted, cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The planner: whether the plan was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    /// The planner: what was wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl EventPayload for ModelCall {
    const KIND: EventKind = EventKind::ModelCall;
}

/// A tool a model's reply called.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CalledTool {
    /// The tool.
    pub name: String,
    /// The call's id, when the model gave one the log keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its arguments as shown (secrets redacted, long ones cut).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub arguments: Value,
}

impl CalledTool {
    /// A call named only.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

/// Older gateway events name their tools as strings; both read.
impl<'de> Deserialize<'de> for CalledTool {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Named(String),
            Full {
                name: String,
                #[serde(default)]
                id: Option<String>,
                #[serde(default)]
                arguments: Value,
            },
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Named(name) => Self::named(&name),
            Written::Full {
                name,
                id,
                arguments,
            } => Self {
                name,
                id,
                arguments,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::json;

    fn event(payload: Value) -> Event {
        super::super::stored("model_call", payload)
    }

    #[test]
    fn payloads_each_writer_wrote_before_read_as_one_type() {
        // The built-in agent's step, as written before the type.
        let step = event(json!({
            "model": "strong", "purpose": "step", "step": 2, "messages": 3,
            "prompt_chars": 812, "reply": "ok", "stop": "tool_use",
            "tool_calls": [{ "id": "c1", "name": "write_file", "arguments": { "path": "a" } }],
            "input_tokens": 10, "output_tokens": 5, "cost_micros": 7,
            "retries": [], "latency_ms": 12
        }))
        .read::<ModelCall>()
        .unwrap();
        assert_eq!(step.purpose.as_deref(), Some("step"));
        assert_eq!(step.tool_calls[0].name, "write_file");
        assert_eq!(step.tool_calls[0].arguments["path"], "a");
        // The gateway's: tools named as strings, a null asked model.
        let gateway = event(json!({
            "via": "gateway", "protocol": "anthropic", "model": "fast", "model_id": "m",
            "asked_model": null, "stream": true, "status": 200, "request_bytes": 1,
            "response_bytes": 2, "first_byte_ms": 3, "latency_ms": 4,
            "input_tokens": 1, "output_tokens": 2, "cost_micros": 0,
            "tool_calls": ["Edit"], "request_blob": "ab"
        }))
        .read::<ModelCall>()
        .unwrap();
        assert_eq!(gateway.tool_calls, vec![CalledTool::named("Edit")]);
        assert_eq!(gateway.asked_model, None);
        assert_eq!(gateway.first_byte_ms, Some(3));
        // The planner's, with a null problem.
        let plan = event(json!({
            "model": "strong", "purpose": "plan", "attempt": 1, "reply": "",
            "plan": null, "valid": false, "problem": null, "plan_id": "p1",
            "input_tokens": 1, "output_tokens": 1, "cost_micros": 1,
            "retries": ["429"], "latency_ms": 5
        }))
        .read::<ModelCall>()
        .unwrap();
        assert_eq!(plan.valid, Some(false));
        assert_eq!(plan.retries, vec!["429".to_owned()]);
        // What is written leaves out what this writer does not know.
        let written = serde_json::to_value(ModelCall {
            model: "fast".into(),
            purpose: Some("summary".into()),
            ..ModelCall::default()
        })
        .unwrap();
        assert_eq!(
            written,
            json!({ "model": "fast", "purpose": "summary", "input_tokens": 0,
                    "output_tokens": 0, "cost_micros": 0 })
        );
    }
}
