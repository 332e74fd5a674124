//! Secret rules as data: loading and compiling.

use super::assignments::{Assignment, assignments};
use super::values::{Decode, entropy, is_expression, is_password_like, is_stand_in};
use aho_corasick::AhoCorasick;
use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Deserialize;
use std::ops::Range;

/// A rule file: `[[rule]]` tables and an `[allow]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRuleFile {
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<SecretRuleSpec>,
    /// What is not a finding.
    #[serde(default)]
    pub allow: AllowSpec,
}

/// One rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRuleSpec {
    /// A stable id, shown with findings.
    pub id: String,
    /// What it finds, for people.
    pub description: String,
    /// The regular expression.
    pub regex: String,
    /// The capture group holding the secret (0: the whole match).
    #[serde(default)]
    pub secret_group: usize,
    /// Lowercase words one of which must be in the line (a fast prefilter).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The least Shannon entropy (bits per character) of a secret.
    pub min_entropy: Option<f64>,
    /// An assignment rule: a regex the value's name must match; `regex`
    /// then matches the value alone (the whole of it).
    pub key: Option<String>,
    /// How the secret must decode: `"base64-credentials"` (`user:password`)
    /// or `"base64-private-key"`.
    pub decode: Option<String>,
    /// `"password"`: the value must look like a chosen password (length
    /// and kinds of characters).
    pub check: Option<String>,
    /// Lines the rule must find a secret in; checked when the rules load.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Lines the rule must not find one in; checked when the rules load.
    #[serde(default)]
    pub counter_examples: Vec<String>,
}

/// The allowlist.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSpec {
    /// Lines matching one of these are not findings.
    #[serde(default)]
    pub regexes: Vec<String>,
    /// Files not scanned.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Files that are secrets by their name.
    #[serde(default)]
    pub sensitive_paths: Vec<String>,
    /// Exceptions to `sensitive_paths`.
    #[serde(default)]
    pub sensitive_path_exceptions: Vec<String>,
}

/// A rule file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct SecretRuleError {
    /// Where the rules came from.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct SecretRule {
    pub id: String,
    pub description: String,
    pub regex: Regex,
    pub secret_group: usize,
    pub keywords: Vec<String>,
    pub min_entropy: Option<f64>,
    pub key: Option<Regex>,
    pub decode: Option<Decode>,
    pub password_like: bool,
}

impl SecretRule {
    /// Where this rule finds secrets in `line`, whose names and values
    /// are `assigned`. A candidate that is a stand-in (placeholder,
    /// interpolation, reference) or, for an assignment rule, code is no
    /// secret. The caller has checked its keywords
    /// ([`SecretRule::may_find`]).
    pub(crate) fn find(&self, line: &str, assigned: &[Assignment<'_>]) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        match &self.key {
            Some(key) => {
                for assignment in assigned {
                    if !key.is_match(assignment.key) {
                        continue;
                    }
                    let value = &line[assignment.value.clone()];
                    if self.regex.is_match(value) && !is_expression(value) && self.plausible(value)
                    {
                        found.push(assignment.value.clone());
                    }
                }
            }
            None => {
                for captures in self.regex.captures_iter(line) {
                    if let Some(secret) = captures.get(self.secret_group)
                        && self.plausible(secret.as_str())
                    {
                        found.push(secret.range());
                    }
                }
            }
        }
        found
    }

    /// False when none of the rule's keywords is on the line (nor, for an
    /// assignment rule, on the line before, which may hold the name).
    pub(crate) fn may_find(&self, lower: &str, previous: Option<&str>) -> bool {
        let named = |text: &str| self.keywords.iter().any(|k| text.contains(k.as_str()));
        self.keywords.is_empty()
            || named(lower)
            || (self.key.is_some() && previous.is_some_and(|p| named(&p.to_lowercase())))
    }

    fn plausible(&self, value: &str) -> bool {
        !is_stand_in(value)
            && self.min_entropy.is_none_or(|least| entropy(value) >= least)
            && self.decode.is_none_or(|decode| decode.holds(value))
            && (!self.password_like || is_password_like(value))
    }
}

/// Compiled rules and allowlist.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRules {
    pub rules: Vec<SecretRule>,
    pub allow_lines: Vec<Regex>,
    pub skip_paths: Vec<String>,
    pub sensitive_paths: Vec<String>,
    pub sensitive_exceptions: Vec<String>,
}

impl CompiledRules {
    /// Parses and compiles a rule file.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, SecretRuleError> {
        let error = |message: String| SecretRuleError {
            source_name: source_name.to_owned(),
            message,
        };
        let file: SecretRuleFile = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for spec in file.rules {
            let regex = Regex::new(&spec.regex)
                .map_err(|e| error(format!("rule {}: bad regex: {e}", spec.id)))?;
            let key = spec
                .key
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| error(format!("rule {}: bad key regex: {e}", spec.id)))?;
            let decode = match spec.decode.as_deref() {
                None => None,
                Some(name) => Some(Decode::named(name).ok_or_else(|| {
                    error(format!(
                        "rule {}: unknown decode {name:?} (base64-credentials, base64-private-key)",
                        spec.id
                    ))
                })?),
            };
            let password_like = match spec.check.as_deref() {
                None => false,
                Some("password") => true,
                Some(other) => {
                    return Err(error(format!(
                        "rule {}: unknown check {other:?} (password)",
                        spec.id
                    )));
                }
            };
            if spec.secret_group >= regex.captures_len() {
                return Err(error(format!(
                    "rule {}: secret_group {} but the regex has {} groups",
                    spec.id,
                    spec.secret_group,
                    regex.captures_len() - 1
                )));
            }
            let rule = SecretRule {
                id: spec.id,
                description: spec.description,
                regex,
                secret_group: spec.secret_group,
                keywords: spec.keywords.iter().map(|k| k.to_lowercase()).collect(),
                min_entropy: spec.min_entropy,
                key,
                decode,
                password_like,
            };
            check_examples(&rule, &spec.examples, &spec.counter_examples).map_err(error)?;
            rules.push(rule);
        }
        let allow_lines = file
            .allow
            .regexes
            .iter()
            .map(|r| Regex::new(r).map_err(|e| error(format!("allow regex {r:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        for pattern in file
            .allow
            .paths
            .iter()
            .chain(&file.allow.sensitive_paths)
            .chain(&file.allow.sensitive_path_exceptions)
        {
            Glob::new(pattern).map_err(|e| error(format!("path pattern {pattern:?}: {e}")))?;
        }
        Ok(Self {
            rules,
            allow_lines,
            skip_paths: file.allow.paths,
            sensitive_paths: file.allow.sensitive_paths,
            sensitive_exceptions: file.allow.sensitive_path_exceptions,
        })
    }

    /// Adds another file's rules and allowlist to these.
    pub fn extend(&mut self, other: CompiledRules) {
        self.rules.extend(other.rules);
        self.allow_lines.extend(other.allow_lines);
        self.skip_paths.extend(other.skip_paths);
        self.sensitive_paths.extend(other.sensitive_paths);
        self.sensitive_exceptions.extend(other.sensitive_exceptions);
    }
}

/// Every example must give the rule a secret and no counter-example may:
/// a rule that does not do what it says never loads. An example's first
/// line, when it has two, is the line before (a name whose value follows).
fn check_examples(
    rule: &SecretRule,
    examples: &[String],
    counter: &[String],
) -> Result<(), String> {
    let finds = |example: &str| {
        let (previous, line) = match example.split_once('\n') {
            Some((previous, line)) => (Some(previous), line),
            None => (None, example),
        };
        let assigned = assignments(line, previous);
        rule.may_find(&line.to_lowercase(), previous) && !rule.find(line, &assigned).is_empty()
    };
    if let Some(missed) = examples.iter().find(|example| !finds(example)) {
        return Err(format!(
            "rule {}: finds nothing in its example {missed:?}",
            rule.id
        ));
    }
    if let Some(wrong) = counter.iter().find(|example| finds(example)) {
        return Err(format!(
            "rule {}: finds a secret in its counter-example {wrong:?}",
            rule.id
        ));
    }
    Ok(())
}

/// Every rule's keywords in one automaton: one pass over a line says which
/// rules may find something in it.
#[derive(Debug, Clone)]
pub(crate) struct KeywordIndex {
    automaton: Option<AhoCorasick>,
    /// For each keyword, the rules it belongs to.
    owners: Vec<Vec<usize>>,
    /// Rules without keywords, which run on every line.
    always: Vec<usize>,
    rules: usize,
}

impl KeywordIndex {
    pub(crate) fn new(rules: &[SecretRule]) -> Self {
        let mut words: Vec<&str> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                always.push(index);
            }
            for keyword in &rule.keywords {
                match words.iter().position(|w| w == keyword) {
                    Some(at) => owners[at].push(index),
                    None => {
                        words.push(keyword);
                        owners.push(vec![index]);
                    }
                }
            }
        }
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .ok();
        Self {
            automaton,
            owners,
            always,
            rules: rules.len(),
        }
    }

    /// For each rule, whether one of its keywords is in `line` (ASCII
    /// case ignored).
    pub(crate) fn rules_named(&self, line: &str) -> Vec<bool> {
        let mut named = vec![false; self.rules];
        for &index in &self.always {
            named[index] = true;
        }
        match &self.automaton {
            Some(automaton) => {
                for found in automaton.find_overlapping_iter(line) {
                    for &index in &self.owners[found.pattern().as_usize()] {
                        named[index] = true;
                    }
                }
            }
            // Without the automaton every rule runs: slower, never blind.
            None => named.iter_mut().for_each(|n| *n = true),
        }
        named
    }
}

/// A glob set of patterns already checked to compile.
pub(crate) fn glob_set(patterns: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        if let Ok(glob) = Glob::new(pattern) {
            builder.add(glob);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}
