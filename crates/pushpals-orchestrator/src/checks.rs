//! The repository's own settings: `pushpals.toml` at the task's base commit.

use serde::Deserialize;
use std::time::Duration;

/// The parts of `pushpals.toml` this version reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RepoConfig {
    /// `[checks]`: commands run after the worker.
    pub checks: ChecksSection,
    /// `[[policy.rule]]`: rules that tighten command policy for this
    /// repository (`allow` rules are refused).
    pub policy: pushpals_policy::RuleFile,
    /// `[plan]`: how plans made for this repository start.
    pub plan: PlanSection,
    /// `[scan]`: how the proactive scanner treats this repository.
    pub scan: ScanSection,
    /// `[setup]`: what prepares dependencies once for all tasks.
    pub setup: crate::setup_config::SetupSection,
}

/// `[scan]`: how often the test check is rerun to find flaky tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanSection {
    /// Extra runs of the test check after the first (0 to 10).
    pub test_reruns: u32,
    /// Run the test check at all.
    pub run_tests: bool,
    /// Proposals that may be open at once.
    pub max_open_proposals: usize,
    /// Hours between scheduled scans (0: only when asked); a scan also
    /// runs when the base branch gets new commits.
    pub interval_hours: u64,
    /// Only these kinds of finding (all when absent), e.g. `["secret",
    /// "ci_config", "failing_test"]`.
    pub detectors: Option<Vec<String>>,
}

impl Default for ScanSection {
    fn default() -> Self {
        Self {
            test_reruns: 2,
            run_tests: true,
            max_open_proposals: 3,
            interval_hours: 24,
            detectors: None,
        }
    }
}

/// `[plan]`: `confirm = true` makes every plan wait for the person's OK
/// before its tasks are created (a repository may ask for more care, never
/// for less).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanSection {
    /// Plans wait for an OK.
    pub confirm: bool,
}

/// `[checks]`: `build`, `lint` and `test` command lines, and a time limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksSection {
    /// Builds the project.
    pub build: Option<String>,
    /// Lints it.
    pub lint: Option<String>,
    /// Tests it.
    pub test: Option<String>,
    /// Each check's time limit in seconds (can only lower the server's).
    pub timeout_secs: Option<u64>,
    /// Files the checks leave that are kept as the task's artifacts
    /// (globs relative to the worktree: test reports, coverage,
    /// screenshots).
    pub artifacts: Vec<String>,
    /// What a worker must offer to run this repository's tasks (`cargo`,
    /// `node`); unset, it is read from the files at the root.
    pub needs: Option<Vec<String>>,
}

/// One check to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `build`, `lint` or `test`.
    pub name: &'static str,
    /// Its command line.
    pub command_line: String,
}

/// `pushpals.toml` at a commit of `repo` (never a worktree's copy, which a
/// task could have changed); the default when there is none.
pub(crate) async fn repo_config_at(
    repo: &pushpals_workspace::Repo,
    rev: &str,
) -> Result<RepoConfig, String> {
    let content = repo
        .file_at(rev, "pushpals.toml")
        .await
        .map_err(|e| format!("cannot read pushpals.toml: {e}"))?;
    match content {
        None => Ok(RepoConfig::default()),
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| "pushpals.toml is not UTF-8 text".to_owned())?;
            RepoConfig::from_toml(&text)
        }
    }
}

impl RepoConfig {
    /// Parses `pushpals.toml`; other sections are left to the features that
    /// own them.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| format!("pushpals.toml: {e}"))?;
        crate::artifacts::artifact_patterns(&config.checks.artifacts)?;
        if let Some(needs) = &config.checks.needs
            && let Some(bad) = needs.iter().find(|n| !crate::valid_label(n))
        {
            return Err(format!(
                "pushpals.toml: [checks] needs: {bad:?} is not a label (1 to 32 lowercase \
                 letters, digits, `.`, `_` or `-`, like cargo or node)"
            ));
        }
        Ok(config)
    }

    /// What a worker must offer to run this repository's tasks: `[checks]
    /// needs`, else what the files at the root of `worktree` show (a
    /// `Cargo.toml` needs `cargo`, a `package.json` `node`, a
    /// `pyproject.toml`, `setup.py` or `requirements.txt` `python`).
    pub fn needs(&self, worktree: &std::path::Path) -> Vec<String> {
        if let Some(needs) = &self.checks.needs {
            return needs.clone();
        }
        let has = |name: &str| worktree.join(name).is_file();
        let mut needs = Vec::new();
        if has("Cargo.toml") {
            needs.push("cargo".to_owned());
        }
        if has("package.json") {
            needs.push("node".to_owned());
        }
        if has("pyproject.toml") || has("setup.py") || has("requirements.txt") {
            needs.push("python".to_owned());
        }
        needs
    }

    /// The checks in the order they run: build, lint, test.
    pub fn checks(&self) -> Vec<Check> {
        let section = &self.checks;
        [
            ("build", &section.build),
            ("lint", &section.lint),
            ("test", &section.test),
        ]
        .into_iter()
        .filter_map(|(name, line)| {
            line.as_ref()
                .filter(|l| !l.trim().is_empty())
                .map(|l| Check {
                    name,
                    command_line: l.clone(),
                })
        })
        .collect()
    }

    /// The repository's policy rules, compiled.
    pub fn policy_rules(&self) -> Result<pushpals_policy::RuleSet, String> {
        pushpals_policy::RuleSet::compile(self.policy.rules.clone(), "pushpals.toml [policy]")
            .map_err(|e| e.to_string())
    }

    /// The time limit of a check: the repository's, capped by the server's.
    pub fn check_timeout(&self, server_limit: Duration) -> Duration {
        self.checks
            .timeout_secs
            .map(Duration::from_secs)
            .map_or(server_limit, |repo| repo.min(server_limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_run_in_a_fixed_order_and_blank_ones_are_skipped() {
        let config = RepoConfig::from_toml(
            "[checks]\ntest = \"cargo test\"\nbuild = \"cargo build\"\nlint = \" \"\n[future]\nx = 1\n",
        )
        .unwrap();
        let names: Vec<_> = config.checks().iter().map(|c| c.name).collect();
        assert_eq!(names, ["build", "test"]);
    }

    #[test]
    fn a_repository_cannot_raise_the_time_limit() {
        let config = RepoConfig::from_toml("[checks]\ntimeout_secs = 99999\n").unwrap();
        assert_eq!(
            config.check_timeout(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let config = RepoConfig::from_toml("[checks]\ntimeout_secs = 5\n").unwrap();
        assert_eq!(
            config.check_timeout(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn a_broken_file_names_the_problem() {
        let err = RepoConfig::from_toml("[checks]\nbuild = 3\n").unwrap_err();
        assert!(err.starts_with("pushpals.toml:"), "{err}");
        let err = RepoConfig::from_toml("[checks]\nbiuld = \"x\"\n").unwrap_err();
        assert!(err.contains("biuld"), "{err}");
    }
}
