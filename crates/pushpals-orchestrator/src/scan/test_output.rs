//! Reading test runners' output: test names and outcomes from cargo test,
//! pytest -v, go test -v and -json, and JUnit XML reports; per-test times
//! where the runner prints them.

use std::collections::BTreeMap;
use std::path::Path;

/// One test's outcome in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed,
}

/// Test names and outcomes in a runner's output.
pub(crate) fn parse(output: &str) -> BTreeMap<String, Outcome> {
    let mut tests = BTreeMap::new();
    for line in output.lines() {
        let line = line.trim();
        // go test -json: {"Action":"pass","Test":"TestX",...}
        if line.starts_with('{')
            && let Ok(event) = serde_json::from_str::<serde_json::Value>(line)
            && let (Some(action), Some(test)) = (event["Action"].as_str(), event["Test"].as_str())
        {
            match action {
                "pass" => tests.insert(test.to_owned(), Outcome::Passed),
                "fail" => tests.insert(test.to_owned(), Outcome::Failed),
                _ => None,
            };
            continue;
        }
        // cargo test: "test path::name ... ok" / "... FAILED"
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, verdict)) = rest.rsplit_once(" ... ")
        {
            match verdict.trim() {
                "ok" => tests.insert(name.trim().to_owned(), Outcome::Passed),
                "FAILED" => tests.insert(name.trim().to_owned(), Outcome::Failed),
                _ => None,
            };
            continue;
        }
        // pytest -v: "tests/test_x.py::test_a PASSED [ 50%]"
        if let Some((name, rest)) = line.split_once(' ')
            && name.contains("::")
        {
            if rest.starts_with("PASSED") {
                tests.insert(name.to_owned(), Outcome::Passed);
            } else if rest.starts_with("FAILED") || rest.starts_with("ERROR") {
                tests.insert(name.to_owned(), Outcome::Failed);
            }
            continue;
        }
        // go test -v: "--- PASS: TestX (0.00s)" / "--- FAIL: TestX (0.01s)"
        // (durations are read by `durations`)
        if let Some(rest) = line.strip_prefix("--- PASS: ") {
            tests.insert(
                rest.split(' ').next().unwrap_or(rest).to_owned(),
                Outcome::Passed,
            );
        } else if let Some(rest) = line.strip_prefix("--- FAIL: ") {
            tests.insert(
                rest.split(' ').next().unwrap_or(rest).to_owned(),
                Outcome::Failed,
            );
        }
    }
    tests
}

/// Test outcomes in JUnit XML (pytest --junitxml, jest-junit, vitest,
/// maven surefire): `<testcase name=.. classname=..>` with a `<failure>` or
/// `<error>` inside when it failed.
pub(crate) fn parse_junit(xml: &str) -> BTreeMap<String, Outcome> {
    let mut tests = BTreeMap::new();
    // An XML parser: entities decoded, comments and CDATA understood. A
    // report that is not XML names no tests.
    let Ok(document) = roxmltree::Document::parse(xml) else {
        return tests;
    };
    for case in document
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
    {
        let Some(name) = case.attribute("name") else {
            continue;
        };
        let child = |tag: &str| case.children().any(|c| c.has_tag_name(tag));
        if child("skipped") {
            continue;
        }
        let full = match case.attribute("classname").filter(|c| !c.is_empty()) {
            Some(class) => format!("{class}::{name}"),
            None => name.to_owned(),
        };
        let failed = child("failure") || child("error");
        tests.insert(
            full,
            if failed {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
        );
    }
    tests
}

/// JUnit XML files under `root`.
pub(crate) fn junit_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < 4 && !matches!(name.as_str(), "node_modules" | "target" | ".git") {
                    stack.push((path, depth + 1));
                }
            } else if name.ends_with(".xml")
                && (name.contains("junit")
                    || name.starts_with("TEST-")
                    || name.contains("test-results"))
            {
                out.push(path);
            }
        }
    }
    out
}

/// Per-test durations in seconds, where the output gives them (go test -v:
/// `--- PASS: TestX (1.50s)`).
pub(crate) fn durations(output: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in output.lines() {
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("--- PASS: ")
            .or_else(|| line.strip_prefix("--- FAIL: "))
        else {
            continue;
        };
        if let Some((name, time)) = rest.split_once(" (")
            && let Ok(seconds) = time
                .trim_end_matches(')')
                .trim_end_matches('s')
                .parse::<f64>()
        {
            out.insert(name.to_owned(), seconds);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_outputs_are_read() {
        let cargo = "running 2 tests\ntest a::one ... ok\ntest a::two ... FAILED\n";
        let pytest =
            "tests/test_x.py::test_a PASSED [ 50%]\ntests/test_x.py::test_b FAILED [100%]\n";
        let go = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n--- FAIL: TestB (0.01s)\n";
        let go_json = "{\"Action\":\"run\",\"Test\":\"TestA\"}\n{\"Action\":\"pass\",\"Test\":\"TestA\"}\n{\"Action\":\"fail\",\"Test\":\"TestB\"}\n{\"Action\":\"fail\"}\n";
        for text in [cargo, pytest, go, go_json] {
            let tests = parse(text);
            assert_eq!(tests.len(), 2, "{text}");
            assert_eq!(tests.values().filter(|o| **o == Outcome::Failed).count(), 1);
        }
    }

    #[test]
    fn junit_reports_are_read() {
        let xml = r#"<testsuite><testcase classname="tests.test_x" name="test_a" time="0.1"/>
            <testcase classname="tests.test_x" name="test_b"><failure message="boom">trace</failure></testcase>
            <testcase name="test_c"><skipped/></testcase></testsuite>"#;
        let tests = parse_junit(xml);
        assert_eq!(tests.get("tests.test_x::test_a"), Some(&Outcome::Passed));
        assert_eq!(tests.get("tests.test_x::test_b"), Some(&Outcome::Failed));
        assert!(!tests.contains_key("test_c"));
    }

    #[test]
    fn junit_entities_comments_and_cdata_are_read_as_xml() {
        let xml = r#"<?xml version="1.0"?>
            <testsuites><!-- <testcase name="commented"><failure/></testcase> -->
            <testsuite><testcase classname="a&amp;b" name="x &lt; y &quot;q&quot;"><error><![CDATA[</testcase>]]></error></testcase>
            <testcase name='single'/></testsuite></testsuites>"#;
        let tests = parse_junit(xml);
        assert_eq!(
            tests.get("a&b::x < y \"q\""),
            Some(&Outcome::Failed),
            "{tests:?}"
        );
        assert_eq!(tests.get("single"), Some(&Outcome::Passed), "{tests:?}");
        assert!(!tests.contains_key("commented"), "{tests:?}");
        assert!(parse_junit("<testsuite><testcase name=").is_empty());
    }

    #[test]
    fn go_test_times_are_read() {
        let times =
            durations("--- PASS: TestA (1.50s)\n--- FAIL: TestB (0.02s)\nok  \tpkg\t1.6s\n");
        assert_eq!(times.get("TestA"), Some(&1.5));
        assert_eq!(times.get("TestB"), Some(&0.02));
        assert_eq!(times.len(), 2);
    }
}
