//! The secret scanner: finds secrets in added lines of a diff (and in any
//! text, for command output), and redacts them.
//!
//! Rules are data (`defaults.toml`, extendable by the user): a regex whose
//! capture group is the secret, keywords as a prefilter, an optional
//! entropy threshold, and an allowlist of lines and paths. Findings carry
//! the file, line and rule and a masked value; the secret itself is never
//! returned, only a fingerprint to mark a false positive by.

mod allowlist;
mod assignments;
mod rules;
mod values;

pub use allowlist::{SECRET_ALLOWLIST_PATH, SecretAllowlist};
pub use rules::{AllowSpec, SecretRuleError, SecretRuleFile, SecretRuleSpec};

use globset::GlobSet;
use rules::{CompiledRules, KeywordIndex, glob_set};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The built-in rules.
pub const DEFAULT_SECRET_RULES: &str = include_str!("defaults.toml");

/// Lines longer than this (minified code, embedded data) are read for
/// token formats only, not for names and values.
pub const LONG_LINE: usize = 4096;

/// A possible secret in a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretFinding {
    /// Identifies the finding across scans: file, rule and secret, hashed.
    pub fingerprint: String,
    /// The file.
    pub file: String,
    /// The line in the new file (0 for a finding about the file itself).
    pub line: u64,
    /// The rule's id.
    pub rule: String,
    /// What the rule finds.
    pub description: String,
    /// The secret with all but its first characters hidden.
    pub masked: String,
}

/// Finds and redacts secrets. Build once, use many times.
#[derive(Debug, Clone)]
pub struct SecretScanner {
    rules: CompiledRules,
    keywords: KeywordIndex,
    skip: GlobSet,
    sensitive: GlobSet,
    sensitive_except: GlobSet,
}

impl SecretScanner {
    /// The built-in rules.
    pub fn builtin() -> Result<Self, SecretRuleError> {
        Ok(Self::from_rules(CompiledRules::from_toml(
            DEFAULT_SECRET_RULES,
            "built-in secret rules",
        )?))
    }

    /// Adds the rules of a user's rule file.
    pub fn with_user_rules(self, text: &str, source_name: &str) -> Result<Self, SecretRuleError> {
        let mut rules = self.rules;
        rules.extend(CompiledRules::from_toml(text, source_name)?);
        Ok(Self::from_rules(rules))
    }

    fn from_rules(rules: CompiledRules) -> Self {
        Self {
            keywords: KeywordIndex::new(&rules.rules),
            skip: glob_set(&rules.skip_paths),
            sensitive: glob_set(&rules.sensitive_paths),
            sensitive_except: glob_set(&rules.sensitive_exceptions),
            rules,
        }
    }

    /// The byte ranges of secrets in one line, with their rule index;
    /// `previous` is the line before it. A line of JSON-escaped text (a
    /// notebook's source) is also read unescaped.
    fn secrets_in_line(
        &self,
        line: &str,
        previous: Option<&str>,
    ) -> Vec<(usize, std::ops::Range<usize>)> {
        if self.rules.allow_lines.iter().any(|r| r.is_match(line)) {
            return Vec::new();
        }
        let mut found = self.find_in(line, previous);
        if line.contains("\\\"") {
            let unescaped = line.replace("\\\"", "\"").replace("\\n", " ");
            for (index, range) in self.find_in(&unescaped, previous) {
                let secret = &unescaped[range];
                if let Some(start) = line.find(secret) {
                    let range = start..start + secret.len();
                    if !found.iter().any(|(_, r)| overlaps(r, &range)) {
                        found.push((index, range));
                    }
                }
            }
        }
        found
    }

    /// What the rules find in `line`, the first rule to claim a stretch of
    /// it keeping it. A rule runs only where one of its keywords is (one
    /// pass over the line finds them all); an assignment rule also where
    /// one is on the line before (a `value:` under its `name:`).
    fn find_in(&self, line: &str, previous: Option<&str>) -> Vec<(usize, std::ops::Range<usize>)> {
        let rules = &self.rules.rules;
        let here = self.keywords.rules_named(line);
        let mut before: Option<Vec<bool>> = None;
        let mut may = |index: usize| {
            here[index]
                || (rules[index].key.is_some()
                    && before.get_or_insert_with(|| {
                        previous.map_or_else(
                            || vec![false; rules.len()],
                            |p| self.keywords.rules_named(p),
                        )
                    })[index])
        };
        let runs: Vec<usize> = (0..rules.len()).filter(|&index| may(index)).collect();
        if runs.is_empty() {
            return Vec::new();
        }
        // Names and values are read only when a rule that reads them runs.
        let assigned = if line.len() <= LONG_LINE && runs.iter().any(|&i| rules[i].key.is_some()) {
            assignments::assignments(line, previous)
        } else {
            Vec::new()
        };
        let mut found: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for index in runs {
            for range in rules[index].find(line, &assigned) {
                if !found.iter().any(|(_, r)| overlaps(r, &range)) {
                    found.push((index, range));
                }
            }
        }
        found
    }

    /// True for a rule that reads names and values (whose findings a file
    /// of encrypted values, a SealedSecret, does not have).
    fn is_assignment_rule(&self, index: usize) -> bool {
        self.rules
            .rules
            .get(index)
            .is_some_and(|rule| rule.key.is_some())
    }

    /// Whether a file is a secret by its name alone.
    pub fn is_sensitive_path(&self, path: &str) -> bool {
        self.sensitive.is_match(path) && !self.sensitive_except.is_match(path)
    }

    /// Scans a whole file (for a scan of a tree): every line, and the
    /// file's name. A repository's history is scanned with [`scan_diff`]
    /// over `git log -p` output.
    ///
    /// [`scan_diff`]: SecretScanner::scan_diff
    pub fn scan_file(&self, path: &str, content: &str) -> Vec<SecretFinding> {
        if self.skip.is_match(path) {
            return Vec::new();
        }
        let mut findings: Vec<SecretFinding> = self
            .sensitive_file(path, Some(content))
            .into_iter()
            .collect();
        let sealed = is_sealed(content);
        let mut previous = None;
        for (number, line) in content.lines().enumerate() {
            let found = self.secrets_in_line(line, previous);
            previous = Some(line);
            for (index, range) in found {
                if sealed && self.is_assignment_rule(index) {
                    continue;
                }
                let rule = &self.rules.rules[index];
                findings.push(self.finding(
                    path,
                    number as u64 + 1,
                    &rule.id,
                    &rule.description,
                    &line[range],
                ));
            }
        }
        findings
    }

    /// Scans the added lines and added files of a unified diff.
    pub fn scan_diff(&self, diff: &str) -> Vec<SecretFinding> {
        let mut findings = Vec::new();
        let mut file: Option<String> = None;
        let mut skip_file = false;
        let mut new_line: u64 = 0;
        let mut previous: Option<&str> = None;
        let mut sealed = false;
        for line in diff.lines() {
            if let Some(rest) = line.strip_prefix("+++ ") {
                file = rest.strip_prefix("b/").map(str::to_owned);
                skip_file = file.as_deref().is_some_and(|f| self.skip.is_match(f));
                findings.extend(
                    file.as_deref()
                        .and_then(|path| self.sensitive_file(path, None)),
                );
                previous = None;
                sealed = false;
                continue;
            }
            if let Some(rest) = line.strip_prefix("Binary files ") {
                // "Binary files /dev/null and b/x differ"
                let path = rest
                    .split(" and ")
                    .nth(1)
                    .and_then(|p| p.strip_suffix(" differ"))
                    .and_then(|p| p.strip_prefix("b/"));
                findings.extend(path.and_then(|path| self.sensitive_file(path, Some(""))));
                continue;
            }
            if let Some(header) = line.strip_prefix("@@ ") {
                new_line = header
                    .split_whitespace()
                    .find_map(|part| part.strip_prefix('+'))
                    .and_then(|range| range.split(',').next())
                    .and_then(|start| start.parse().ok())
                    .unwrap_or(0);
                continue;
            }
            if line.starts_with("diff --git ") {
                file = None;
                continue;
            }
            let Some(path) = file.as_deref() else {
                continue;
            };
            if let Some(text) = line.strip_prefix(' ').or_else(|| line.strip_prefix('+')) {
                sealed |= is_sealed(text);
            }
            if let Some(added) = line.strip_prefix('+') {
                if !skip_file {
                    for (index, range) in self.secrets_in_line(added, previous) {
                        if sealed && self.is_assignment_rule(index) {
                            continue;
                        }
                        let rule = &self.rules.rules[index];
                        findings.push(self.finding(
                            path,
                            new_line,
                            &rule.id,
                            &rule.description,
                            &added[range],
                        ));
                    }
                }
                new_line += 1;
                previous = Some(added);
            } else if let Some(context) = line.strip_prefix(' ') {
                new_line += 1;
                previous = Some(context);
            }
        }
        findings
    }

    /// A finding for a file that is a secret by its name. A PEM file is
    /// one only when it holds a private key (a certificate is public):
    /// `content` is its text, `Some("")` for a binary file, `None` when
    /// unknown (a diff: its lines are read by the rules instead).
    fn sensitive_file(&self, path: &str, content: Option<&str>) -> Option<SecretFinding> {
        let pem = [".pem", ".crt", ".cer"]
            .iter()
            .any(|ext| path.ends_with(ext));
        if pem {
            match content {
                None => return None,
                Some(text) if !text.is_empty() && !text.contains("PRIVATE KEY") => return None,
                Some(_) => {}
            }
        }
        self.is_sensitive_path(path).then(|| {
            self.finding(
                path,
                0,
                "sensitive-file",
                "a file that holds secrets by its name",
                path,
            )
        })
    }

    fn finding(
        &self,
        file: &str,
        line: u64,
        rule: &str,
        description: &str,
        secret: &str,
    ) -> SecretFinding {
        let mut hasher = Sha256::new();
        for part in [file, rule, secret] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        SecretFinding {
            fingerprint: hex::encode(&hasher.finalize()[..8]),
            file: file.to_owned(),
            line,
            rule: rule.to_owned(),
            description: description.to_owned(),
            masked: mask(secret),
        }
    }

    /// `text` with every secret replaced by `[REDACTED:<rule>]`; borrowed
    /// unchanged when there is none.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = String::new();
        let mut changed = false;
        let mut rest_start = 0;
        let mut previous: Option<&str> = None;
        for line in text.split_inclusive('\n') {
            let start = rest_start;
            rest_start += line.len();
            let mut found = self.secrets_in_line(line, previous);
            previous = Some(line.trim_end_matches('\n'));
            if found.is_empty() {
                if changed {
                    out.push_str(line);
                }
                continue;
            }
            if !changed {
                out.push_str(&text[..start]);
                changed = true;
            }
            found.sort_by_key(|(_, range)| range.start);
            let mut cursor = 0;
            for (index, range) in found {
                if range.start < cursor {
                    continue;
                }
                out.push_str(&line[cursor..range.start]);
                out.push_str(&format!("[REDACTED:{}]", self.rules.rules[index].id));
                cursor = range.end;
            }
            out.push_str(&line[cursor..]);
        }
        if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(text)
        }
    }
}

/// True when two ranges share a byte.
fn overlaps(a: &std::ops::Range<usize>, b: &std::ops::Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// A file of encrypted values (a Bitnami SealedSecret): its names are
/// secret-looking, its values are safe to commit.
fn is_sealed(text: &str) -> bool {
    text.contains("kind: SealedSecret")
}

/// The first four characters, then how long the rest is.
fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}… ({} characters)", secret.chars().count())
}

#[cfg(test)]
mod tests;
