//! Secrets in the committed tree, and in history (also those removed since:
//! a secret that was ever pushed must be rotated).

use super::{Found, Tree};
use pushpals_workspace::{CommitPatch, SecretAllowlist, SecretScanner};
use serde_json::json;

/// Secrets in the files of the tree.
pub(crate) fn in_tree(
    tree: &Tree,
    scanner: &SecretScanner,
    allowlist: &SecretAllowlist,
) -> Vec<Found> {
    let mut found = Vec::new();
    for file in &tree.files {
        let Some(text) = tree.text(file) else {
            continue;
        };
        for finding in scanner.scan_file(file, text) {
            if allowlist.allows(&finding) {
                continue;
            }
            found.push(Found {
                kind: "secret",
                severity: "high",
                title: format!("A possible secret ({}) is committed", finding.rule),
                file: Some(file.clone()),
                line: Some(finding.line),
                key: finding.fingerprint.clone(),
                evidence: json!({ "rule": finding.rule, "masked": finding.masked }),
            });
        }
    }
    found
}

/// Secrets added by recent commits that are no longer in the tree.
pub(crate) fn in_history(
    patches: &[CommitPatch],
    in_tree: &[String],
    scanner: &SecretScanner,
    allowlist: &SecretAllowlist,
) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    // Oldest first, so the commit named is the one that added it.
    for patch in patches.iter().rev() {
        for finding in scanner.scan_diff(&patch.patch) {
            if in_tree.contains(&finding.fingerprint)
                || allowlist.allows(&finding)
                || found.iter().any(|f| f.key == finding.fingerprint)
            {
                continue;
            }
            found.push(Found {
                kind: "secret_history",
                severity: "high",
                title: format!(
                    "A possible secret ({}) was committed in {} and is still in history; rotate it",
                    finding.rule,
                    &patch.commit[..patch.commit.len().min(12)]
                ),
                file: Some(finding.file.clone()),
                line: Some(finding.line),
                key: finding.fingerprint.clone(),
                evidence: json!({
                    "rule": finding.rule,
                    "masked": finding.masked,
                    "commit": patch.commit,
                }),
            });
        }
    }
    found
}
