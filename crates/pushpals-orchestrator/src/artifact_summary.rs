//! What an artifact is, read from its name and bytes, and the summary a
//! person sees first: a JUnit report's counts and failed tests, an lcov
//! report's line coverage.

use crate::scan::test_output::{Outcome, parse_junit};
use serde_json::{Value, json};

/// What an artifact is, and a summary for the ones that have one.
pub(crate) fn describe(path: &str, bytes: &[u8]) -> (&'static str, Value) {
    let lower = path.to_ascii_lowercase();
    let extension = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match extension {
        "png" | "jpg" | "jpeg" | "gif" | "webp" => ("image", Value::Null),
        "html" | "htm" => ("html", Value::Null),
        "xml" => match junit_summary(bytes) {
            Ok(summary) => ("junit", summary),
            Err(why) => ("file", json!({ "note": why })),
        },
        _ if lower.ends_with("lcov.info") || extension == "lcov" => match lcov_summary(bytes) {
            Some(summary) => ("coverage", summary),
            None => ("file", json!({ "note": "not an lcov report" })),
        },
        _ => ("file", Value::Null),
    }
}

/// A JUnit report's counts and its failed tests (failures first in the
/// list a person sees); an error when it is not one.
fn junit_summary(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let document =
        roxmltree::Document::parse(text).map_err(|e| format!("not a JUnit report: {e}"))?;
    if !document
        .descendants()
        .any(|n| n.has_tag_name("testsuite") || n.has_tag_name("testsuites"))
    {
        return Err("not a JUnit report: no <testsuite>".into());
    }
    let outcomes = parse_junit(text);
    let failed: Vec<&String> = outcomes
        .iter()
        .filter(|(_, outcome)| **outcome == Outcome::Failed)
        .map(|(name, _)| name)
        .collect();
    let passed: Vec<&String> = outcomes
        .iter()
        .filter(|(_, outcome)| **outcome == Outcome::Passed)
        .map(|(name, _)| name)
        .collect();
    Ok(json!({
        "tests": outcomes.len(),
        "failures": failed.len(),
        "failed": failed.iter().take(200).collect::<Vec<_>>(),
        "passed": passed.iter().take(200).collect::<Vec<_>>(),
    }))
}

/// An lcov report's line coverage.
fn lcov_summary(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (mut found, mut hit, mut files) = (0u64, 0u64, 0u64);
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("LF:") {
            found += n.trim().parse::<u64>().ok()?;
        } else if let Some(n) = line.strip_prefix("LH:") {
            hit += n.trim().parse::<u64>().ok()?;
        } else if line.starts_with("SF:") {
            files += 1;
        }
    }
    (files > 0).then(|| {
        let percent = if found == 0 {
            100.0
        } else {
            (hit as f64 * 1000.0 / found as f64).round() / 10.0
        };
        json!({ "files": files, "lines": found, "lines_hit": hit, "percent": percent })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_summarised_and_malformed_ones_kept_as_files() {
        let junit = br#"<testsuite><testcase classname="a" name="ok"/><testcase classname="a" name="bad"><failure/></testcase></testsuite>"#;
        let (kind, summary) = describe("target/junit.xml", junit);
        assert_eq!(kind, "junit");
        assert_eq!(summary["tests"], 2);
        assert_eq!(summary["failed"][0], "a::bad");
        let (kind, summary) = describe("target/junit.xml", b"<testsuite><testcase");
        assert_eq!(kind, "file");
        assert!(
            summary["note"]
                .as_str()
                .unwrap()
                .starts_with("not a JUnit report")
        );
        let (kind, summary) = describe(
            "coverage/lcov.info",
            b"SF:a.rs\nLF:10\nLH:7\nend_of_record\n",
        );
        assert_eq!(
            (kind, summary["percent"].as_f64()),
            ("coverage", Some(70.0))
        );
        assert_eq!(describe("shots/home.png", b"\x89PNG").0, "image");
        assert_eq!(describe("report/index.html", b"<html>").0, "html");
    }
}
