//! A repository's own allowlist of secret findings,
//! `.pushpals/secrets-allow.toml`: committed and reviewed like code, read
//! at the commit a task started from (a task cannot allow its own secret).
//!
//! ```toml
//! fingerprints = ["3f9a1c7e5b2d8f4a"]   # as findings show them
//! paths = ["tests/fixtures/**"]         # files whose findings are test data
//! ```

use super::SecretFinding;
use super::rules::SecretRuleError;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use std::collections::HashSet;

/// Where a repository keeps it.
pub const SECRET_ALLOWLIST_PATH: &str = ".pushpals/secrets-allow.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    fingerprints: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
}

/// Findings a repository says are not secrets.
#[derive(Debug, Clone, Default)]
pub struct SecretAllowlist {
    fingerprints: HashSet<String>,
    paths: Option<GlobSet>,
}

impl SecretAllowlist {
    /// Reads an allowlist file; a bad fingerprint or pattern is named.
    pub fn from_toml(text: &str) -> Result<Self, SecretRuleError> {
        let error = |message: String| SecretRuleError {
            source_name: SECRET_ALLOWLIST_PATH.to_owned(),
            message,
        };
        let file: AllowFile = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        for fingerprint in &file.fingerprints {
            if fingerprint.len() != 16 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(error(format!(
                    "fingerprint {fingerprint:?} is not one: a finding's fingerprint is 16 hexadecimal characters"
                )));
            }
        }
        let paths = if file.paths.is_empty() {
            None
        } else {
            let mut builder = GlobSetBuilder::new();
            for pattern in &file.paths {
                builder
                    .add(Glob::new(pattern).map_err(|e| error(format!("path {pattern:?}: {e}")))?);
            }
            Some(builder.build().map_err(|e| error(e.to_string()))?)
        };
        Ok(Self {
            fingerprints: file
                .fingerprints
                .iter()
                .map(|f| f.to_ascii_lowercase())
                .collect(),
            paths,
        })
    }

    /// True when the repository allows `finding`.
    pub fn allows(&self, finding: &SecretFinding) -> bool {
        self.fingerprints.contains(&finding.fingerprint)
            || self
                .paths
                .as_ref()
                .is_some_and(|paths| paths.is_match(&finding.file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(file: &str, fingerprint: &str) -> SecretFinding {
        SecretFinding {
            fingerprint: fingerprint.into(),
            file: file.into(),
            line: 1,
            rule: "r".into(),
            description: "d".into(),
            masked: "m".into(),
        }
    }

    #[test]
    fn fingerprints_and_paths_allow_findings_and_nothing_else() {
        let list = SecretAllowlist::from_toml(
            "fingerprints = [\"3F9A1C7E5B2D8F4A\"]\npaths = [\"tests/fixtures/**\"]\n",
        )
        .unwrap();
        assert!(list.allows(&finding("src/a.rs", "3f9a1c7e5b2d8f4a")));
        assert!(list.allows(&finding("tests/fixtures/keys.json", "0000000000000000")));
        assert!(!list.allows(&finding("src/a.rs", "0000000000000000")));
        assert!(!SecretAllowlist::default().allows(&finding("a", "3f9a1c7e5b2d8f4a")));
    }

    #[test]
    fn a_bad_allowlist_says_what_is_wrong() {
        for (text, says) in [
            ("fingerprints = [\"nothex\"]", "16 hexadecimal"),
            ("paths = [\"a[\"]", "path \"a[\""),
            ("allow = true", "unknown field"),
        ] {
            let err = SecretAllowlist::from_toml(text).unwrap_err().to_string();
            assert!(err.starts_with(SECRET_ALLOWLIST_PATH), "{err}");
            assert!(err.contains(says), "{err}");
        }
    }
}
