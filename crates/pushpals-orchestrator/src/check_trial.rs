//! Trying the repository's checks at its current commit in the sandbox,
//! before any task depends on them: whether each passes, and when it does
//! not, why, in words a person can act on (a program the sandbox cannot
//! find, a dependency missing offline, a network call refused, policy).

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::Actor;
use pushpals_policy::Decision;
use serde::Serialize;
use std::path::Path;

/// One check, tried.
#[derive(Debug, Clone, Serialize)]
pub struct CheckTrial {
    /// `build`, `lint` or `test`.
    pub name: String,
    /// Its command line.
    pub command: String,
    /// It ran and passed.
    pub passed: bool,
    /// Its exit code, when it ran and exited.
    pub exit_code: Option<i32>,
    /// Why it did not pass, when that can be told.
    pub diagnosis: Option<String>,
    /// The end of its output.
    pub excerpt: String,
}

impl Orchestrator {
    /// Runs each check of `pushpals.toml` at HEAD, in the sandbox, as a
    /// task's check would run (policy first; nothing is approved here).
    pub async fn try_checks(
        &self,
        repo: Option<&str>,
        actor: Actor,
    ) -> OrchestratorResult<Vec<CheckTrial>> {
        let served = self.resolve_repo(repo)?;
        let commit = served.repo.head_commit().await?;
        let config = crate::checks::repo_config_at(&served.repo, &commit)
            .await
            .map_err(OrchestratorError::InvalidInput)?;
        let checks = config.checks();
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let policy = self
            .scanner
            .scan_policy(&config)
            .map_err(OrchestratorError::InvalidInput)?;
        let scratch = self
            .worktrees_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("checks-{}-{commit}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| {
            OrchestratorError::Internal(format!("cannot make {}: {e}", scratch.display()))
        })?;
        let exported = served.repo.export_tree(&commit, &scratch).await;
        let mut trials = Vec::new();
        if exported.is_ok() {
            for check in checks {
                let verdict = policy.judge(&check.command_line);
                let mut trial = CheckTrial {
                    name: check.name.to_owned(),
                    command: check.command_line.clone(),
                    passed: false,
                    exit_code: None,
                    diagnosis: None,
                    excerpt: String::new(),
                };
                if verdict.decision != Decision::Allow {
                    trial.diagnosis = Some(format!(
                        "policy {}s it ({}): in a task it would {}",
                        verdict.decision,
                        verdict.reason(),
                        if verdict.decision == Decision::Deny {
                            "never run"
                        } else {
                            "wait for your approval"
                        }
                    ));
                    trials.push(trial);
                    continue;
                }
                let step = format!("try:{}", check.name);
                match self
                    .scanner
                    .scan_command(&step, &check.command_line, &scratch, &actor)
                    .await
                {
                    Ok(run) => {
                        trial.passed = run.passed;
                        trial.exit_code = run.exit_code;
                        trial.excerpt = tail(&run.output);
                        if !run.passed {
                            trial.diagnosis =
                                Some(diagnose(&check.command_line, run.exit_code, &run.output));
                        }
                    }
                    Err(error) => trial.diagnosis = Some(format!("it could not run: {error}")),
                }
                trials.push(trial);
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        exported?;
        Ok(trials)
    }
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Why a check failed, in words a person can act on.
fn diagnose(command: &str, exit_code: Option<i32>, output: &str) -> String {
    let lower = output.to_lowercase();
    if matches!(exit_code, Some(126 | 127)) {
        let missing = output
            .lines()
            .find_map(|line| {
                let (_, rest) = line.split_once(": ")?;
                let (program, _) = rest.rsplit_once(": command not found")?;
                Some(
                    program
                        .rsplit(": ")
                        .next()
                        .unwrap_or(program)
                        .trim()
                        .to_owned(),
                )
            })
            .unwrap_or_else(|| {
                command
                    .split_whitespace()
                    .next()
                    .unwrap_or(command)
                    .to_owned()
            });
        return match host_program(&missing) {
            Some(found) => format!(
                "`{missing}` is not found in the sandbox; this machine has it at {}, which the sandbox does not show. Install it where the sandbox looks (/usr/bin, /usr/local/bin, rustup, ~/.cargo/bin, pyenv) or make it part of the repository's setup",
                found.display()
            ),
            None => format!(
                "`{missing}` is not installed on this machine: install it (or make it part of the repository's setup)"
            ),
        };
    }
    if lower.contains("offline")
        && (lower.contains("no matching package")
            || lower.contains("failed to download")
            || lower.contains("not found in the registry"))
    {
        return "a dependency is missing offline: fetch it on this machine first (`cargo fetch`), or add a setup step; the sandbox has no network".into();
    }
    if lower.contains("could not resolve host")
        || lower.contains("temporary failure in name resolution")
        || lower.contains("network is unreachable")
        || lower.contains("name or service not known")
    {
        return "it tried the network, which the sandbox does not have: fetch what it needs first, or grant the network in policy".into();
    }
    if lower.contains("modulenotfounderror") || lower.contains("no module named") {
        return "a Python module is missing: install the project's dependencies where the sandbox sees them (a setup step)".into();
    }
    format!(
        "it ran and failed (exit {}): the output below says why",
        exit_code.map_or_else(|| "without a code".to_owned(), |c| c.to_string())
    )
}

/// Where this machine's `PATH` has `program`, if anywhere.
fn host_program(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_in_words_a_person_can_act_on() {
        let missing = diagnose(
            "pushpals-no-such-tool -q",
            Some(127),
            "bash: line 1: pushpals-no-such-tool: command not found\n",
        );
        assert!(
            missing.contains("`pushpals-no-such-tool` is not installed on this machine"),
            "{missing}"
        );
        let hidden = diagnose("sh x", Some(127), "bash: line 1: sh: command not found\n");
        assert!(hidden.contains("this machine has it at"), "{hidden}");
        let offline = diagnose(
            "cargo test --offline",
            Some(101),
            "error: no matching package named `no-panic` found\nAs a reminder, you're using offline mode (--offline)",
        );
        assert!(offline.contains("missing offline"), "{offline}");
        let network = diagnose(
            "npm test",
            Some(1),
            "getaddrinfo: Temporary failure in name resolution",
        );
        assert!(network.contains("network"), "{network}");
        let plain = diagnose("make test", Some(2), "test x ... FAILED");
        assert!(plain.contains("exit 2"), "{plain}");
    }
}
