//! Vulnerable dependencies: the versions pinned in lock files matched
//! against an advisory database in the open OSV format.

use super::{Found, Tree};
use serde_json::{Value, json};

/// One pinned dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
    pub file: String,
}

/// The dependencies the tree's lock files pin.
pub(crate) fn pinned(tree: &Tree) -> Vec<Pinned> {
    let mut out = Vec::new();
    for file in &tree.files {
        let name = file.rsplit('/').next().unwrap_or(file);
        let Some(text) = tree.text(file) else {
            continue;
        };
        let mut push = |ecosystem: &'static str, name: &str, version: &str| {
            out.push(Pinned {
                ecosystem,
                name: name.to_owned(),
                version: version.to_owned(),
                file: file.clone(),
            });
        };
        match name {
            "Cargo.lock" | "poetry.lock" => {
                let ecosystem = if name == "Cargo.lock" {
                    "crates.io"
                } else {
                    "PyPI"
                };
                if let Ok(value) = toml::from_str::<toml::Value>(text) {
                    for package in value
                        .get("package")
                        .and_then(|p| p.as_array())
                        .into_iter()
                        .flatten()
                    {
                        if let (Some(n), Some(v)) = (
                            package.get("name").and_then(|v| v.as_str()),
                            package.get("version").and_then(|v| v.as_str()),
                        ) {
                            push(ecosystem, n, v);
                        }
                    }
                }
            }
            "package-lock.json" => {
                if let Ok(value) = serde_json::from_str::<Value>(text) {
                    for (path, package) in value["packages"].as_object().into_iter().flatten() {
                        let Some(n) = path
                            .rsplit("node_modules/")
                            .next()
                            .filter(|n| !n.is_empty())
                        else {
                            continue;
                        };
                        if let Some(v) = package["version"].as_str() {
                            push("npm", n, v);
                        }
                    }
                }
            }
            "requirements.txt" => {
                for line in text.lines() {
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if let Some((n, v)) = line.split_once("==") {
                        push("PyPI", n.trim(), v.trim());
                    }
                }
            }
            "go.sum" => {
                for line in text.lines() {
                    let mut parts = line.split_whitespace();
                    if let (Some(n), Some(v)) = (parts.next(), parts.next())
                        && !v.ends_with("/go.mod")
                    {
                        push("Go", n, v);
                    }
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| (&a.file, &a.name, &a.version).cmp(&(&b.file, &b.name, &b.version)));
    out.dedup();
    out
}

/// A version in its ecosystem's own ordering: PEP 440 for PyPI
/// (`2.0` < `2.0.1`, `1.0rc1` < `1.0`), SemVer for crates.io, npm and Go
/// (Go's `v` prefix and pseudo-versions, npm's shortened `2.0`).
#[derive(Debug, PartialEq, PartialOrd)]
enum Ordered {
    Semver(semver::Version),
    Pep440(pep440_rs::Version),
}

fn ordered(ecosystem: &str, version: &str) -> Option<Ordered> {
    let version = version.trim();
    if ecosystem == "PyPI" {
        return version
            .parse::<pep440_rs::Version>()
            .ok()
            .map(Ordered::Pep440);
    }
    let bare = version.trim_start_matches('v');
    if let Ok(parsed) = semver::Version::parse(bare) {
        return Some(Ordered::Semver(parsed));
    }
    // `2`, `2.0`: the missing parts are zero (npm's and OSV's loose forms).
    let (core, rest) = match bare.find(['-', '+']) {
        Some(at) => bare.split_at(at),
        None => (bare, ""),
    };
    let parts = core.split('.').count();
    if !(1..=2).contains(&parts) {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts));
    semver::Version::parse(&padded).ok().map(Ordered::Semver)
}

/// Whether an OSV `affected` entry covers this version of a package of
/// `ecosystem`.
fn affects(affected: &Value, ecosystem: &str, version: &str) -> bool {
    if affected["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| v.as_str() == Some(version))
    {
        return true;
    }
    let Some(mine) = ordered(ecosystem, version) else {
        return false;
    };
    let at = |text: &str| ordered(ecosystem, text);
    for range in affected["ranges"].as_array().into_iter().flatten() {
        if !matches!(range["type"].as_str(), Some("SEMVER" | "ECOSYSTEM")) {
            continue;
        }
        let mut inside = false;
        for event in range["events"].as_array().into_iter().flatten() {
            if let Some(start) = event["introduced"].as_str() {
                if start == "0" || at(start).is_some_and(|s| mine >= s) {
                    inside = true;
                }
            } else if let Some(end) = event["fixed"].as_str() {
                if at(end).is_some_and(|e| mine >= e) {
                    inside = false;
                }
            } else if let Some(last) = event["last_affected"].as_str()
                && at(last).is_some_and(|l| mine > l)
            {
                inside = false;
            }
        }
        if inside {
            return true;
        }
    }
    false
}

/// Findings for pinned versions that an advisory covers.
pub(crate) fn detect(pinned: &[Pinned], advisories: &[Value]) -> Vec<Found> {
    let mut out = Vec::new();
    for advisory in advisories {
        let id = advisory["id"].as_str().unwrap_or("advisory");
        for affected in advisory["affected"].as_array().into_iter().flatten() {
            let package = &affected["package"];
            for pin in pinned.iter().filter(|p| {
                package["ecosystem"].as_str() == Some(p.ecosystem)
                    && package["name"].as_str() == Some(p.name.as_str())
            }) {
                if !affects(affected, pin.ecosystem, &pin.version) {
                    continue;
                }
                let fixed: Vec<&str> = affected["ranges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|r| r["events"].as_array().into_iter().flatten())
                    .filter_map(|e| e["fixed"].as_str())
                    .collect();
                let severity = match advisory["database_specific"]["severity"]
                    .as_str()
                    .map(str::to_lowercase)
                    .as_deref()
                {
                    Some("low") => "low",
                    Some("moderate" | "medium") => "medium",
                    _ => "high",
                };
                out.push(Found {
                    kind: "vulnerable_dependency",
                    severity,
                    title: format!(
                        "{} {} is affected by {id}: {}",
                        pin.name,
                        pin.version,
                        advisory["summary"].as_str().unwrap_or("see the advisory")
                    ),
                    file: Some(pin.file.clone()),
                    line: None,
                    key: format!("{id}:{}:{}", pin.name, pin.version),
                    evidence: json!({
                        "advisory": id,
                        "aliases": advisory["aliases"],
                        "ecosystem": pin.ecosystem,
                        "fixed_in": fixed,
                    }),
                });
            }
        }
    }
    out
}

/// Reads advisories from a directory of records, one file (a record or a
/// list), or an http(s) URL of such a file.
pub(crate) async fn load(source: &str) -> Result<Vec<Value>, String> {
    let text_of = |value: Value| match value {
        Value::Array(items) => items,
        record => vec![record],
    };
    if source.starts_with("http://") || source.starts_with("https://") {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body = reqwest::Client::new()
            .get(source)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("cannot fetch the advisories at {source}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("cannot read the advisories at {source}: {e}"))?;
        let value = serde_json::from_str(&body)
            .map_err(|e| format!("the advisories at {source} are not JSON: {e}"))?;
        return Ok(text_of(value));
    }
    let path = std::path::Path::new(source);
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path)
            .map_err(|e| format!("cannot read {source}: {e}"))?
            .flatten()
        {
            if entry.path().extension().is_some_and(|x| x == "json") {
                files.push(entry.path());
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
        out.extend(text_of(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists_decide_what_is_affected() {
        let affected = json!({
            "versions": ["0.9.1"],
            "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "1.0.0" }, { "fixed": "1.2.3" }] }]
        });
        for (version, hit) in [
            ("0.9.1", true),
            ("0.9.0", false),
            ("1.0.0", true),
            ("1.2.2", true),
            ("1.2.3", false),
            ("2.0.0", false),
        ] {
            assert_eq!(affects(&affected, "crates.io", version), hit, "{version}");
        }
        let open_ended = json!({ "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "last_affected": "3.1.0" }] }] });
        assert!(
            affects(&open_ended, "crates.io", "3.1.0")
                && !affects(&open_ended, "crates.io", "3.1.1")
        );
    }

    #[test]
    fn each_ecosystem_orders_versions_its_own_way() {
        let pypi = json!({ "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "1.0rc1" }, { "fixed": "2.0.1" }] }] });
        for (version, hit) in [
            ("1.0a1", false),
            ("1.0rc1", true),
            ("1.0", true),
            ("2.0", true),
            ("2.0.post1", true),
            ("2.0.1", false),
            ("10.0", false),
        ] {
            assert_eq!(affects(&pypi, "PyPI", version), hit, "PyPI {version}");
        }
        let npm = json!({ "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "2.0" }, { "fixed": "2.3.0" }] }] });
        assert!(affects(&npm, "npm", "2.0.0") && affects(&npm, "npm", "2.2.9"));
        assert!(!affects(&npm, "npm", "2.3.0") && !affects(&npm, "npm", "1.9.9"));
        let go = json!({ "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": "0.17.0" }] }] });
        assert!(affects(&go, "Go", "v0.16.1-0.20230101000000-abcdef123456"));
        assert!(!affects(&go, "Go", "v0.17.0"));
    }
}
