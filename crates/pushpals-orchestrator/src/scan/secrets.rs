//! Secrets in the committed tree, and in history (also those removed since:
//! a secret that was ever pushed must be rotated).

use super::{Found, Tree};
use pushpals_workspace::{CommitPatch, LONG_LINE, SecretAllowlist, SecretScanner};
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

/// What the secret rules read only in part, for the report: files not
/// read (binary, or over the size limit) and long lines (minified code)
/// read for token formats only.
pub(crate) fn partly_read(tree: &Tree) -> Option<String> {
    let unread = tree.files.iter().filter(|f| tree.text(f).is_none()).count();
    let long: usize = tree
        .files
        .iter()
        .filter_map(|f| tree.text(f))
        .map(|text| text.lines().filter(|line| line.len() > LONG_LINE).count())
        .sum();
    (unread > 0 || long > 0).then(|| {
        format!(
            "secrets: {unread} binary or over-1-MiB files were not read; {long} lines over {LONG_LINE} bytes (minified) were read for token formats only"
        )
    })
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
