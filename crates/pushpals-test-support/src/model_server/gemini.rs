//! Gemini generateContent replies, whole and streamed.

use super::shared::{call_id, input_object, pieces, sse};
use serde_json::{Value, json};

/// One `GenerateContentResponse`: text, function calls, and with `usage`
/// the finish reason and token counts.
pub(super) fn gemini_chunk(
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

pub(super) fn gemini_stream(
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
