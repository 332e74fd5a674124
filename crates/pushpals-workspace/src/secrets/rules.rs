//! Secret rules as data: loading and compiling.

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Deserialize;

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
            if spec.secret_group >= regex.captures_len() {
                return Err(error(format!(
                    "rule {}: secret_group {} but the regex has {} groups",
                    spec.id,
                    spec.secret_group,
                    regex.captures_len() - 1
                )));
            }
            rules.push(SecretRule {
                id: spec.id,
                description: spec.description,
                regex,
                secret_group: spec.secret_group,
                keywords: spec.keywords.iter().map(|k| k.to_lowercase()).collect(),
                min_entropy: spec.min_entropy,
            });
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
