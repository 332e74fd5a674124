//! TODO hotspots: files with many TODO/FIXME/HACK markers that also change
//! often (recent history), where unfinished work costs the most.

use super::{Found, Tree};
use serde_json::json;
use std::collections::HashMap;

/// A file is a hotspot at or above this score (markers × (1 + changes)).
const THRESHOLD: u32 = 12;
/// Markers counted.
const MARKERS: [&str; 4] = ["TODO", "FIXME", "HACK", "XXX"];

pub(crate) fn detect(tree: &Tree, churn: &HashMap<String, u32>) -> Vec<Found> {
    let mut out = Vec::new();
    for file in &tree.files {
        let Some(text) = tree.text(file) else {
            continue;
        };
        let mut first_line = None;
        let mut markers = 0u32;
        for (index, line) in text.lines().enumerate() {
            if MARKERS.iter().any(|m| line.contains(m)) {
                markers += 1;
                first_line.get_or_insert(index as u64 + 1);
            }
        }
        if markers == 0 {
            continue;
        }
        let changes = churn.get(file).copied().unwrap_or(0);
        let score = markers * (1 + changes);
        if score >= THRESHOLD {
            out.push(Found {
                kind: "todo_hotspot",
                severity: "low",
                title: format!(
                    "{markers} TODO/FIXME markers in a file changed {changes} times recently"
                ),
                file: Some(file.clone()),
                line: first_line,
                key: "hotspot".into(),
                evidence: json!({ "markers": markers, "recent_changes": changes, "score": score }),
            });
        }
    }
    out
}
