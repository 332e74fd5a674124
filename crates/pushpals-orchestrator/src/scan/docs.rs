//! Docs and developer experience: a README that says how to run and test,
//! Markdown links that lead somewhere, CI configured, lock files present.

use super::{Found, Tree};
use serde_json::json;
use std::path::Path;

fn found(
    severity: &'static str,
    title: String,
    file: Option<&str>,
    line: Option<u64>,
    key: &str,
) -> Found {
    Found {
        kind: "docs",
        severity,
        title,
        file: file.map(str::to_owned),
        line,
        key: key.to_owned(),
        evidence: json!({}),
    }
}

/// Relative link targets in a Markdown line: `[text](target)`.
fn links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim());
        rest = &after[end..];
    }
    out
}

pub(crate) fn detect(tree: &Tree) -> Vec<Found> {
    let mut out = Vec::new();
    let has = |name: &str| tree.files.iter().any(|f| f == name);
    match tree
        .files
        .iter()
        .find(|f| f.eq_ignore_ascii_case("README.md") || f.eq_ignore_ascii_case("README"))
    {
        None => out.push(found(
            "medium",
            "There is no README".into(),
            None,
            None,
            "no-readme",
        )),
        Some(readme) => {
            let text = tree.text(readme).unwrap_or_default().to_lowercase();
            if !text.contains("test") {
                out.push(found(
                    "medium",
                    "The README does not say how to run the tests".into(),
                    Some(readme),
                    None,
                    "readme-no-test",
                ));
            }
            if !(text.contains("run") || text.contains("install") || text.contains("build")) {
                out.push(found(
                    "low",
                    "The README does not say how to run or build it".into(),
                    Some(readme),
                    None,
                    "readme-no-run",
                ));
            }
        }
    }
    for file in tree.files.iter().filter(|f| f.ends_with(".md")) {
        let Some(text) = tree.text(file) else {
            continue;
        };
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        for (index, line) in text.lines().enumerate() {
            for target in links(line) {
                let target = target
                    .split('#')
                    .next()
                    .unwrap_or_default()
                    .split(' ')
                    .next()
                    .unwrap_or_default();
                if target.is_empty()
                    || target.contains("://")
                    || target.starts_with("mailto:")
                    || target.starts_with('/')
                {
                    continue;
                }
                if !tree.root.join(dir).join(target).exists() {
                    out.push(found(
                        "low",
                        format!("The link to {target} leads nowhere"),
                        Some(file),
                        Some(index as u64 + 1),
                        &format!("broken-link:{target}"),
                    ));
                }
            }
        }
    }
    let ci = tree.files.iter().any(|f| {
        f.starts_with(".github/workflows/")
            || f == ".gitlab-ci.yml"
            || f.starts_with(".circleci/")
            || f.starts_with(".ci/")
    });
    if !ci {
        out.push(found(
            "low",
            "No CI configuration: nothing checks a change before it lands".into(),
            None,
            None,
            "no-ci",
        ));
    }
    for (manifest, locks) in [
        (
            "package.json",
            &["package-lock.json", "yarn.lock", "pnpm-lock.yaml"][..],
        ),
        ("Cargo.toml", &["Cargo.lock"][..]),
        (
            "pyproject.toml",
            &["poetry.lock", "uv.lock", "requirements.txt", "pdm.lock"][..],
        ),
        ("go.mod", &["go.sum"][..]),
    ] {
        if has(manifest) && !locks.iter().any(|l| has(l)) {
            out.push(found(
                "low",
                format!(
                    "{manifest} has no lock file ({}): builds are not reproducible",
                    locks.join(" or ")
                ),
                Some(manifest),
                None,
                "no-lock",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_are_read_from_markdown() {
        assert_eq!(
            super::links("see [a](docs/a.md) and [b](https://x.y) [c]( c.md )"),
            vec!["docs/a.md", "https://x.y", "c.md"]
        );
    }
}
