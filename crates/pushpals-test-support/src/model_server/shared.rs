//! What every protocol's replies are made of: call ids, streamed pieces,
//! server-sent events, tool arguments.

use serde_json::{Value, json};

pub(super) fn call_id(id: u64, index: usize) -> String {
    format!("call_{id}_{index}")
}

/// Splits text into pieces of a few characters, on char boundaries.
pub(super) fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

pub(super) fn sse(out: &mut String, event: Option<&str>, data: &Value) {
    if let Some(event) = event {
        out.push_str(&format!("event: {event}\n"));
    }
    out.push_str(&format!("data: {data}\n\n"));
}

pub(super) fn input_object(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
}
