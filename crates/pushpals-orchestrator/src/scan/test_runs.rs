//! Failing and flaky tests: the repository's test check, run at the
//! scanned commit (policy-checked, in the sandbox) once and then again; a
//! test that fails every time is failing, one that both passed and failed
//! is flaky. Test names come from the runner's output (cargo test, pytest
//! -v, go test -v); without names, the check as a whole is judged.
//!
//! Over 400 lines: running the test check again and again and judging failing, flaky, slow and
//! broken; reading output is in `test_output`.

use super::Found;
use super::Scanner;
use super::test_output::{Outcome, durations, junit_files, parse, parse_junit};
use crate::checks::RepoConfig;
use pushpals_core::payload::{CommandFinished, CommandStarted};
use pushpals_core::{Actor, NewEvent};
use pushpals_policy::Decision;
use pushpals_sandbox::CommandSpec;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use tokio::sync::{mpsc, watch};

/// Most reruns a repository may ask for.
const MAX_RERUNS: u32 = 10;
/// Output kept for evidence.
const TAIL: usize = 2000;

fn tail(text: &str) -> String {
    let start = text.len().saturating_sub(TAIL);
    let mut start = start;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// One run of a scanner command: exit status, output, wall time, and the
/// outcomes of JUnit XML reports it wrote.
pub(crate) struct Run {
    pub passed: bool,
    /// The exit code, when the command exited.
    pub exit_code: Option<i32>,
    pub output: String,
    pub seconds: f64,
    pub junit: BTreeMap<String, Outcome>,
}

impl Scanner {
    /// The policy the scanner's commands are judged by: the person's and
    /// the repository's rules.
    pub(crate) fn scan_policy(
        &self,
        config: &RepoConfig,
    ) -> Result<pushpals_policy::Policy, String> {
        let rules = config.policy_rules()?;
        self.gate
            .policy()
            .map_err(|e| e.to_string())?
            .with_repo_rules(rules)
            .map_err(|e| e.to_string())
    }

    /// Runs the test check `runs` times in `root` and judges each test.
    pub(crate) async fn test_findings(
        &self,
        repo: &str,
        config: &RepoConfig,
        root: &Path,
        commit: &str,
        actor: &Actor,
    ) -> (Vec<Found>, Vec<String>) {
        let mut notes = Vec::new();
        if !config.scan.run_tests {
            notes.push("tests were not run: [scan] run_tests = false in pushpals.toml".into());
            return (Vec::new(), notes);
        }
        let Some(command) = config.checks.test.clone().filter(|c| !c.trim().is_empty()) else {
            notes.push(
                "no test check: set [checks] test in pushpals.toml to find failing and flaky tests"
                    .into(),
            );
            return (Vec::new(), notes);
        };
        let policy = match self.scan_policy(config) {
            Ok(policy) => policy,
            Err(error) => {
                notes.push(format!("tests were not run: {error}"));
                return (Vec::new(), notes);
            }
        };
        let verdict = policy.judge(&command);
        if verdict.decision != Decision::Allow || verdict.network {
            notes.push(format!(
                "tests were not run: policy says {} for `{command}` (the scanner runs only what is allowed without network)",
                verdict.decision
            ));
            return (Vec::new(), notes);
        }
        let runs = 1 + config.scan.test_reruns.min(MAX_RERUNS);
        let mut results = Vec::new();
        for number in 1..=runs {
            match self
                .scan_command(&format!("scan:test:{number}"), &command, root, actor)
                .await
            {
                Ok(run) => results.push(run),
                Err(why) => {
                    notes.push(format!("the test check could not run: {why}"));
                    break;
                }
            }
        }
        let mut found = judge(&command, &results);
        self.with_history(repo, &command, commit, &results, &mut found)
            .await;
        let (slow, slow_notes) = self.timing_findings(repo, &command, commit, &results).await;
        found.extend(slow);
        notes.extend(slow_notes);
        (found, notes)
    }

    /// Keeps each test's outcomes per scan: a test that passed and failed
    /// at the same commit across scans is flaky too, and every finding
    /// carries the test's record over all scans.
    async fn with_history(
        &self,
        repo: &str,
        command: &str,
        commit: &str,
        runs: &[Run],
        found: &mut Vec<Found>,
    ) {
        let counts = outcome_counts(runs);
        let entries: Vec<(String, u32, u32)> = counts
            .iter()
            .map(|(n, (p, f))| (n.clone(), *p, *f))
            .collect();
        let (commit_owned, repo) = (commit.to_owned(), repo.to_owned());
        let Ok(history) = self
            .store
            .write(move |tx| {
                let mut out = Vec::new();
                for (name, passed, failed) in entries {
                    let (same, all) =
                        tx.record_test_result(&repo, &name, &commit_owned, passed, failed)?;
                    out.push((name, passed, failed, same, all));
                }
                Ok(out)
            })
            .await
        else {
            return;
        };
        for (name, passed, failed, same, all) in history {
            let (here_passed, here_failed) =
                (same.0 + u64::from(passed), same.1 + u64::from(failed));
            let flaky_here = here_passed > 0 && here_failed > 0;
            if flaky_here
                && !found
                    .iter()
                    .any(|x| x.key == name && x.kind == "flaky_test")
            {
                found.retain(|x| x.key != name);
                found.push(Found {
                    kind: "flaky_test",
                    severity: "medium",
                    title: format!(
                        "{name} is flaky: it failed {here_failed} of {} runs at this commit, across scans",
                        here_passed + here_failed
                    ),
                    file: None,
                    line: None,
                    key: name.clone(),
                    evidence: json!({ "command": command }),
                });
            }
            let (runs_all, failed_all) = (
                all.0 + all.1 + u64::from(passed) + u64::from(failed),
                all.1 + u64::from(failed),
            );
            for finding in found.iter_mut().filter(|x| x.key == name) {
                finding.evidence["history"] = json!({
                    "runs": runs_all,
                    "failed": failed_all,
                    "flake_rate": failed_all as f64 / runs_all.max(1) as f64,
                });
            }
        }
    }

    /// Records the check's and each test's time at `commit` and reports
    /// what got clearly slower than its recent median.
    async fn timing_findings(
        &self,
        repo: &str,
        command: &str,
        commit: &str,
        runs: &[Run],
    ) -> (Vec<Found>, Vec<String>) {
        let mut samples: Vec<(String, f64)> = Vec::new();
        let mut check_times: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
        check_times.sort_by(f64::total_cmp);
        if let Some(median) = check_times.get(check_times.len() / 2) {
            samples.push((format!("check:{command}"), *median));
        }
        let per_test = runs
            .first()
            .map(|r| durations(&r.output))
            .unwrap_or_default();
        let mut slowest: Vec<(&String, &f64)> = per_test.iter().collect();
        slowest.sort_by(|a, b| b.1.total_cmp(a.1));
        let mut notes = Vec::new();
        if !slowest.is_empty() {
            let listed: Vec<String> = slowest
                .iter()
                .take(3)
                .map(|(n, s)| format!("{n} ({s:.2}s)"))
                .collect();
            notes.push(format!("slowest tests: {}", listed.join(", ")));
        }
        samples.extend(
            per_test
                .iter()
                .map(|(name, s)| (format!("test:{name}"), *s)),
        );
        let (commit_owned, repo) = (commit.to_owned(), repo.to_owned());
        let recorded = self
            .store
            .write(move |tx| {
                let mut out = Vec::new();
                for (subject, seconds) in samples {
                    let earlier = tx.record_duration(&repo, &subject, &commit_owned, seconds, 5)?;
                    out.push((subject, seconds, earlier));
                }
                Ok(out)
            })
            .await;
        let Ok(recorded) = recorded else {
            return (Vec::new(), notes);
        };
        let mut found = Vec::new();
        for (subject, seconds, earlier) in recorded {
            let before: Vec<&(String, f64)> = earlier.iter().filter(|(c, _)| c != commit).collect();
            if before.is_empty() {
                continue;
            }
            let mut times: Vec<f64> = before.iter().map(|(_, s)| *s).collect();
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            if seconds >= 2.0 * median && seconds - median >= 1.0 {
                let since = before.last().map(|(c, _)| c.clone()).unwrap_or_default();
                let (kind, name) = match subject.split_once(':') {
                    Some(("test", name)) => ("slow_test", name.to_owned()),
                    _ => ("slow_check", command.to_owned()),
                };
                found.push(Found {
                    kind,
                    severity: "low",
                    title: format!("{name} got slower: {seconds:.2}s, up from a median of {median:.2}s"),
                    file: None,
                    line: None,
                    key: subject.clone(),
                    evidence: json!({
                        "seconds": seconds,
                        "median_before": median,
                        "samples": times.len(),
                        "commits": format!("{}..{}", &since[..since.len().min(12)], &commit[..commit.len().min(12)]),
                    }),
                });
            }
        }
        (found, notes)
    }

    /// Runs one command for the scanner in the sandbox, recording its start
    /// and end.
    pub(crate) async fn scan_command(
        &self,
        step: &str,
        command: &str,
        root: &Path,
        actor: &Actor,
    ) -> Result<Run, String> {
        let step = step.to_owned();
        let started = NewEvent::typed(
            None,
            actor.clone(),
            &CommandStarted {
                step: step.to_owned(),
                command: command.to_owned(),
                backend: self.runner.backend().to_owned(),
                timeout_secs: None,
                warning: None,
            },
        )
        .map_err(|e| e.to_string())?;
        self.store
            .write(move |tx| tx.append(started))
            .await
            .map_err(|e| e.to_string())?;
        let spec = CommandSpec {
            command_line: command.to_owned(),
            cwd: root.to_path_buf(),
            timeout: self.settings.get().check_timeout(),
            env: Vec::new(),
            read_only_paths: Vec::new(),
            network_proxy: None,
            gateway: None,
            home: None,
            session: None,
            alias: None,
        };
        // Reports left from before (committed, or an earlier run) are not
        // this run's: remove them, so what is there afterwards is.
        for stale in junit_files(root) {
            let _ = std::fs::remove_file(stale);
        }
        let (sender, mut receiver) = mpsc::channel::<pushpals_sandbox::OutputChunk>(64);
        let (_keep, cancel) = watch::channel(false);
        let collect = tokio::spawn(async move {
            let mut bytes = Vec::new();
            while let Some(chunk) = receiver.recv().await {
                if bytes.len() < 8 << 20 {
                    bytes.extend_from_slice(&chunk.bytes);
                }
            }
            bytes
        });
        let outcome = self.runner.run(spec, sender, cancel).await;
        let bytes = collect.await.unwrap_or_default();
        let output = self
            .secrets
            .get()
            .redact(&String::from_utf8_lossy(&bytes))
            .into_owned();
        let (passed, describe) = match &outcome {
            Ok(outcome) => (outcome.succeeded(), outcome.describe()),
            Err(error) => (false, error.to_string()),
        };
        let exit_code = outcome.as_ref().ok().and_then(|o| o.exit_code);
        let finished = NewEvent::typed(
            None,
            actor.clone(),
            &CommandFinished {
                step: step.to_owned(),
                exit_code: outcome.as_ref().ok().and_then(|o| o.exit_code),
                outcome: Some(describe),
                ..CommandFinished::default()
            },
        )
        .map_err(|e| e.to_string())?;
        self.store
            .write(move |tx| tx.append(finished))
            .await
            .map_err(|e| e.to_string())?;
        let seconds = outcome.map_err(|e| e.to_string())?.duration.as_secs_f64();
        let mut junit = BTreeMap::new();
        for report in junit_files(root) {
            if let Ok(xml) = std::fs::read_to_string(&report) {
                junit.extend(parse_junit(&xml));
            }
        }
        Ok(Run {
            passed,
            exit_code,
            output,
            seconds,
            junit,
        })
    }
}

/// Each test's passes and failures over the runs.
fn outcome_counts(runs: &[Run]) -> BTreeMap<String, (u32, u32)> {
    let mut counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for run in runs {
        let mut tests = parse(&run.output);
        tests.extend(run.junit.iter().map(|(k, v)| (k.clone(), *v)));
        for (name, outcome) in tests {
            let entry = counts.entry(name).or_default();
            match outcome {
                Outcome::Passed => entry.0 += 1,
                Outcome::Failed => entry.1 += 1,
            }
        }
    }
    counts
}

/// Failing and flaky findings from the runs.
fn judge(command: &str, runs: &[Run]) -> Vec<Found> {
    if runs.is_empty() {
        return Vec::new();
    }
    // A command the shell could not find or run is not a failing test:
    // the check is broken (a missing tool, a virtual environment the
    // sandbox does not see), and says which.
    if runs
        .iter()
        .all(|r| !r.passed && matches!(r.exit_code, Some(126 | 127)))
    {
        let why = runs
            .iter()
            .flat_map(|r| r.output.lines())
            .find(|l| {
                l.contains("not found")
                    || l.contains("No such file")
                    || l.contains("Permission denied")
            })
            .unwrap_or("")
            .trim()
            .to_owned();
        return vec![Found {
            kind: "broken_check",
            severity: "high",
            title: format!(
                "The test check `{command}` cannot run: {} (exit {}); no test ran",
                if why.is_empty() {
                    "its program was not found or cannot be run"
                } else {
                    &why
                },
                runs[0].exit_code.unwrap_or(127)
            ),
            file: None,
            line: None,
            key: format!("check:{command}"),
            evidence: json!({ "command": command, "runs": runs.len(), "excerpt": tail(&runs[0].output) }),
        }];
    }
    let parsed: Vec<BTreeMap<String, Outcome>> = runs
        .iter()
        .map(|r| {
            let mut tests = parse(&r.output);
            tests.extend(r.junit.iter().map(|(k, v)| (k.clone(), *v)));
            tests
        })
        .collect();
    let mut names: Vec<&String> = parsed.iter().flat_map(|p| p.keys()).collect();
    names.sort();
    names.dedup();
    let mut found = Vec::new();
    for name in names {
        let outcomes: Vec<Outcome> = parsed.iter().filter_map(|p| p.get(name).copied()).collect();
        let failed = outcomes.iter().filter(|o| **o == Outcome::Failed).count();
        let passed = outcomes.len() - failed;
        let excerpt = runs
            .iter()
            .zip(&parsed)
            .find(|(_, p)| p.get(name) == Some(&Outcome::Failed))
            .map(|(r, _)| tail(&r.output))
            .unwrap_or_default();
        let evidence = json!({
            "command": command,
            "runs": outcomes.len(),
            "passed": passed,
            "failed": failed,
            "flake_rate": failed as f64 / outcomes.len().max(1) as f64,
            "excerpt": excerpt,
        });
        if failed > 0 && passed > 0 {
            found.push(Found {
                kind: "flaky_test",
                severity: "medium",
                title: format!(
                    "{name} is flaky: it failed {failed} of {} runs at the same commit",
                    outcomes.len()
                ),
                file: None,
                line: None,
                key: name.clone(),
                evidence,
            });
        } else if failed > 0 {
            found.push(Found {
                kind: "failing_test",
                severity: "high",
                title: format!("{name} fails"),
                file: None,
                line: None,
                key: name.clone(),
                evidence,
            });
        }
    }
    // Without test names, judge the check as a whole.
    if parsed.iter().all(BTreeMap::is_empty) {
        let failed = runs.iter().filter(|r| !r.passed).count();
        if failed > 0 {
            let flaky = failed < runs.len();
            found.push(Found {
                kind: if flaky { "flaky_test" } else { "failing_test" },
                severity: if flaky { "medium" } else { "high" },
                title: format!(
                    "The test check `{command}` {} ({failed} of {} runs failed; no test names in its output)",
                    if flaky { "is flaky" } else { "fails" },
                    runs.len()
                ),
                file: None,
                line: None,
                key: format!("check:{command}"),
                evidence: json!({
                    "command": command,
                    "runs": runs.len(),
                    "failed": failed,
                    "excerpt": runs.iter().find(|r| !r.passed).map(|r| tail(&r.output)),
                }),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flaky_and_failing_are_told_apart() {
        let run = |output: &str, passed| Run {
            passed,
            exit_code: Some(if passed { 0 } else { 1 }),
            output: output.to_owned(),
            seconds: 0.1,
            junit: BTreeMap::new(),
        };
        let runs = [
            run("test x ... ok\ntest y ... FAILED\n", false),
            run("test x ... FAILED\ntest y ... FAILED\n", false),
        ];
        let found = judge("make test", &runs);
        let kinds: Vec<(&str, &str)> = found.iter().map(|f| (f.kind, f.key.as_str())).collect();
        assert_eq!(kinds, [("flaky_test", "x"), ("failing_test", "y")]);
        let unnamed = judge("make test", &[run("boom", false), run("fine", true)]);
        assert_eq!(unnamed[0].kind, "flaky_test");
    }

    #[test]
    fn a_command_that_is_not_found_is_a_broken_check_not_a_failing_test() {
        let missing = Run {
            passed: false,
            exit_code: Some(127),
            output: "bash: line 1: pytest: command not found\n".into(),
            seconds: 0.0,
            junit: BTreeMap::new(),
        };
        let found = judge("pytest -q", &[missing]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "broken_check");
        assert!(
            found[0].title.contains("pytest: command not found"),
            "{}",
            found[0].title
        );
    }
}
