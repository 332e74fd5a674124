//! Judging a command line: every part, strictest wins.
//!
//! Over 400 lines: judging a line is one walk (commands, wrappers, redirections, assignments,
//! hazards) plus the pattern rules made from its findings.

use crate::builtins;
use crate::decision::{Decision, Finding, Verdict};
use crate::hazards::{Concern, HazardError, Hazards};
use crate::paths::escapes_worktree;
use crate::rules::{RuleError, RuleSet, RuleSpec};
use crate::shell::{self, Word};
use crate::wrappers::{self, Inner};

/// The built-in rules.
pub const DEFAULT_RULES: &str = include_str!("defaults.toml");

/// How deep wrappers and `sh -c` bodies may nest before policy asks.
const MAX_DEPTH: usize = 8;

/// Variables that change which programs run or what they load.
const SENSITIVE_VARIABLES: &[&str] = &[
    "PATH",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUSTC_WRAPPER",
    "RUSTC",
    "RUSTFLAGS",
    "CARGO_HOME",
    "CC",
    "CXX",
    "MAKEFLAGS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "SHELL",
    "HOME",
    "PROMPT_COMMAND",
];
const SENSITIVE_PREFIXES: &[&str] = &["LD_", "DYLD_", "GIT_", "BASH_FUNC_"];

/// Programs that write the paths they are given.
const WRITES_EVERY_PATH: &[&str] = &[
    "touch", "mkdir", "rm", "rmdir", "tee", "truncate", "chmod", "chown", "chgrp", "shred",
];
/// Programs that write their last path (the destination).
const WRITES_LAST_PATH: &[&str] = &["cp", "mv", "ln", "install"];

/// Command policy: built-in rules, the user's rules (which may loosen or
/// tighten the built-in ones), and the repository's rules (which may only
/// tighten). Build once, judge many times.
#[derive(Debug, Clone)]
pub struct Policy {
    builtin: RuleSet,
    user: RuleSet,
    repo: RuleSet,
    hazards: Hazards,
}

/// The built-in rules or hazard table failed to load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinError {
    /// A rule.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// The hazard table.
    #[error(transparent)]
    Hazards(#[from] HazardError),
}

impl Policy {
    /// Every rule in force, with where it comes from (`builtin`, `user`,
    /// `repo`), in that order.
    pub fn listed(&self) -> Vec<(&'static str, &RuleSpec)> {
        [
            ("builtin", &self.builtin),
            ("user", &self.user),
            ("repo", &self.repo),
        ]
        .into_iter()
        .flat_map(|(source, set)| set.rules().iter().map(move |rule| (source, rule.spec())))
        .collect()
    }

    /// The built-in rules alone.
    pub fn builtin() -> Result<Self, BuiltinError> {
        Ok(Self {
            builtin: RuleSet::from_toml(DEFAULT_RULES, "built-in rules")?,
            user: RuleSet::default(),
            repo: RuleSet::default(),
            hazards: Hazards::builtin()?,
        })
    }

    /// Adds the user's rules (`policy.toml`).
    pub fn with_user_rules(mut self, rules: RuleSet) -> Self {
        self.user = rules;
        self
    }

    /// Adds the repository's rules; refuses `allow` rules, since a
    /// repository may only tighten.
    pub fn with_repo_rules(mut self, rules: RuleSet) -> Result<Self, RuleError> {
        rules.require_tightening_only()?;
        self.repo = rules;
        Ok(self)
    }

    /// The rules that would allow, from now on, the parts of `line` that
    /// ask: one per asking command, naming its program and (when it has
    /// one) its first argument that is not an option. Fails, saying why,
    /// when a part cannot be allowed by a pattern (a program chosen at run
    /// time, a program by path, a sensitive variable, a write target known
    /// only at run time) or a part is denied.
    pub fn pattern_rules(&self, line: &str) -> Result<Vec<RuleSpec>, String> {
        let verdict = self.judge(line);
        let mut rules: Vec<RuleSpec> = Vec::new();
        for finding in verdict
            .findings
            .iter()
            .filter(|f| f.decision != Decision::Allow)
        {
            if finding.decision == Decision::Deny {
                return Err(format!(
                    "`{}` is denied ({}); no approval can allow it",
                    finding.part, finding.reason
                ));
            }
            let parsed = shell::parse(&finding.part)
                .map_err(|_| format!("`{}` cannot be made a pattern", finding.part))?;
            let argv = match parsed.commands.as_slice() {
                [command] if command.assignments.is_empty() => &command.argv,
                _ => {
                    return Err(format!(
                        "`{}` cannot be made a pattern: {}",
                        finding.part, finding.reason
                    ));
                }
            };
            let Some(program) = argv.first().filter(|w| !w.dynamic && !w.text.contains('/')) else {
                return Err(format!(
                    "`{}` cannot be made a pattern: {}",
                    finding.part, finding.reason
                ));
            };
            if !self.hazards.concerns(argv).is_empty() {
                return Err(format!(
                    "`{}` cannot be made a pattern: {}; approve it each time",
                    finding.part, finding.reason
                ));
            }
            if argv.iter().any(|w| w.dynamic) && finding.reason.contains("only known at run time") {
                return Err(format!(
                    "`{}` cannot be made a pattern: {}",
                    finding.part, finding.reason
                ));
            }
            let subcommand = argv[1..]
                .iter()
                .find(|w| !w.dynamic && !w.text.starts_with('-'))
                .map(|w| glob_escape(&w.text));
            let rule = RuleSpec {
                programs: vec![program.text.clone()],
                prefix: subcommand.into_iter().collect(),
                any_arg: Vec::new(),
                decision: Decision::Allow,
                network: finding.network,
                reason: format!(
                    "always allowed by the person (first asked for `{}`)",
                    finding.part
                ),
                examples: Vec::new(),
                not_match: Vec::new(),
            };
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
        Ok(rules)
    }

    /// Judges a command line: every simple command, wrapper, script body,
    /// redirection and assignment; the verdict is the strictest finding.
    pub fn judge(&self, line: &str) -> Verdict {
        let mut findings = Vec::new();
        self.judge_line(line, 0, &mut findings);
        Verdict::from_findings(findings)
    }

    fn judge_line(&self, line: &str, depth: usize, findings: &mut Vec<Finding>) {
        let parsed = match shell::parse(line) {
            Ok(parsed) => parsed,
            Err(error) => {
                findings.push(finding(line, Decision::Ask, error.to_string()));
                return;
            }
        };
        for (name, _) in &parsed.assignments {
            self.check_assignment(name, findings);
        }
        for redirect in parsed.redirects.iter().filter(|r| r.writes()) {
            let part = format!("{} {}", redirect.operator, redirect.target.text);
            if redirect.target.dynamic {
                findings.push(finding(
                    &part,
                    Decision::Ask,
                    "writes to a file named only at run time".into(),
                ));
            } else if let Some(why) = escapes_worktree(&redirect.target.text) {
                findings.push(finding(
                    &part,
                    Decision::Deny,
                    format!("writes outside the worktree: {why}"),
                ));
            }
        }
        for pipeline in &parsed.pipelines {
            let fetches = pipeline
                .iter()
                .position(|p| matches!(p.as_str(), "curl" | "wget"));
            let runs = pipeline.iter().rposition(|p| {
                matches!(
                    p.as_str(),
                    "sh" | "bash"
                        | "dash"
                        | "zsh"
                        | "ksh"
                        | "python"
                        | "python3"
                        | "perl"
                        | "ruby"
                        | "node"
                        | "sudo"
                )
            });
            if let (Some(fetch), Some(run)) = (fetches, runs)
                && fetch < run
            {
                findings.push(finding(
                    &pipeline.join(" | "),
                    Decision::Deny,
                    "pipes a download into an interpreter".into(),
                ));
            }
        }
        for command in &parsed.commands {
            for (name, _) in &command.assignments {
                self.check_assignment(name, findings);
            }
            self.judge_argv(&command.argv, depth, findings);
        }
    }

    fn judge_argv(&self, argv: &[Word], depth: usize, findings: &mut Vec<Finding>) {
        let Some(program) = argv.first() else {
            return;
        };
        let part = display(argv);
        if depth > MAX_DEPTH {
            findings.push(finding(
                &part,
                Decision::Ask,
                "wrappers nest too deeply to judge".into(),
            ));
            return;
        }
        if program.dynamic {
            findings.push(finding(
                &part,
                Decision::Ask,
                "which program runs is only known at run time".into(),
            ));
            return;
        }
        match wrappers::inner(argv) {
            Inner::Command {
                argv: inner,
                assignments,
            } => {
                for (name, _) in &assignments {
                    self.check_assignment(name, findings);
                }
                if inner.is_empty() {
                    self.judge_by_rules(argv, findings);
                } else {
                    self.judge_argv(&inner, depth + 1, findings);
                }
                return;
            }
            Inner::Script(body) => {
                if body.dynamic {
                    findings.push(finding(
                        &part,
                        Decision::Ask,
                        "runs a shell script only known at run time".into(),
                    ));
                } else {
                    self.judge_line(&body.text, depth + 1, findings);
                }
                return;
            }
            Inner::Several { commands, own_argv } => {
                for command in &commands {
                    self.judge_argv(command, depth + 1, findings);
                }
                self.judge_by_rules(&own_argv, findings);
                return;
            }
            Inner::None => {}
        }
        self.check_write_targets(argv, findings);
        for concern in self.hazards.concerns(argv) {
            match concern {
                Concern::Runs(why) => findings.push(finding(&part, Decision::Ask, why)),
                Concern::WritesOutside(why) => findings.push(finding(&part, Decision::Deny, why)),
            }
        }
        match builtins::variables_set(argv) {
            builtins::Sets::Names(names) => {
                for name in names {
                    self.check_assignment(&name, findings);
                }
            }
            builtins::Sets::Unknown(why) => findings.push(finding(&part, Decision::Ask, why)),
        }
        match program.text.as_str() {
            "sed" => {
                if let Some(concern) = wrappers::sed_concern(argv) {
                    findings.push(finding(&part, Decision::Ask, concern));
                }
            }
            "awk" | "gawk" | "mawk" => {
                if let Some(concern) = wrappers::awk_concern(argv) {
                    findings.push(finding(&part, Decision::Ask, concern));
                }
            }
            _ => {}
        }
        self.judge_by_rules(argv, findings);
    }

    /// Built-in rules unless the user's rules match; then the repository's
    /// rules tighten.
    fn judge_by_rules(&self, argv: &[Word], findings: &mut Vec<Finding>) {
        let part = display(argv);
        let program = argv.first().map(|w| w.text.as_str()).unwrap_or("");
        let base = self.user.decide(argv).or_else(|| self.builtin.decide(argv));
        let (mut decision, mut reason, network) = match base {
            Some(found) => found,
            None if program.contains('/') => (
                Decision::Ask,
                format!(
                    "runs the program at the path {program}, which no rule names (`./sed` is not `sed`)"
                ),
                false,
            ),
            None => (Decision::Ask, format!("no rule covers `{program}`"), false),
        };
        if let Some((repo_decision, repo_reason, _)) = self.repo.decide(argv)
            && repo_decision > decision
        {
            decision = repo_decision;
            reason = format!("the repository's policy: {repo_reason}");
        }
        let mut judged = finding(&part, decision, reason);
        judged.network = network;
        findings.push(judged);
    }

    fn check_write_targets(&self, argv: &[Word], findings: &mut Vec<Finding>) {
        let program = argv[0].text.as_str();
        let paths: Vec<&Word> = argv[1..]
            .iter()
            .filter(|w| w.dynamic || !w.text.starts_with('-'))
            .collect();
        let targets: Vec<&Word> = if WRITES_EVERY_PATH.contains(&program) {
            if matches!(program, "chmod" | "chown" | "chgrp") {
                paths.into_iter().skip(1).collect()
            } else {
                paths
            }
        } else if WRITES_LAST_PATH.contains(&program) {
            paths.last().copied().into_iter().collect()
        } else if program == "sed" && argv.iter().any(|w| !w.dynamic && w.text.starts_with("-i")) {
            let explicit = argv
                .iter()
                .any(|w| w.text == "-e" || w.text.starts_with("--expression"));
            paths.into_iter().skip(usize::from(!explicit)).collect()
        } else if program == "dd" {
            argv.iter()
                .filter_map(|w| w.text.strip_prefix("of=").map(|_| w))
                .collect()
        } else {
            Vec::new()
        };
        for target in targets {
            let path = target.text.strip_prefix("of=").unwrap_or(&target.text);
            if target.dynamic {
                continue;
            }
            if let Some(why) = escapes_worktree(path) {
                findings.push(finding(
                    &display(argv),
                    Decision::Deny,
                    format!("writes outside the worktree: {why}"),
                ));
            }
        }
    }
}

/// Escapes glob metacharacters so a word matches only itself.
fn glob_escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Policy {
    fn check_assignment(&self, name: &str, findings: &mut Vec<Finding>) {
        let sensitive = SENSITIVE_VARIABLES.contains(&name)
            || SENSITIVE_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
            || self.hazards.sensitive_variable(name);
        if sensitive {
            findings.push(finding(
                &format!("{name}=..."),
                Decision::Ask,
                format!("setting {name} changes which programs run or what they load"),
            ));
        }
    }
}

fn finding(part: &str, decision: Decision, reason: String) -> Finding {
    Finding {
        part: part.to_owned(),
        decision,
        reason,
        network: false,
    }
}

fn display(argv: &[Word]) -> String {
    argv.iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
