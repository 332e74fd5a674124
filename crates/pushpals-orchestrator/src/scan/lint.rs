//! Lint and type errors: the linters a repository uses, run at the scanned
//! commit in the sandbox (when policy allows them), their machine-readable
//! output turned into findings with file, line, rule and message.

use super::Found;
use serde_json::{Value, json};

/// A linter and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linter {
    /// `cargo clippy --message-format=json`.
    Clippy,
    /// `ruff check --output-format json`.
    Ruff,
}

impl Linter {
    /// The command line.
    pub fn command(self) -> &'static str {
        match self {
            Self::Clippy => {
                "cargo clippy --quiet --message-format=json --target-dir /tmp/pushpals-scan-target"
            }
            Self::Ruff => "ruff check --output-format json .",
        }
    }

    /// Its name in findings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clippy => "clippy",
            Self::Ruff => "ruff",
        }
    }

    /// How to install it, for the report.
    pub fn install_hint(self) -> &'static str {
        match self {
            Self::Clippy => "rustup component add clippy",
            Self::Ruff => "pip install ruff",
        }
    }

    /// The mechanical fix, when the tool has one.
    pub fn fixer(self) -> &'static str {
        match self {
            // Build output goes to the sandbox's own /tmp, not into the change.
            Self::Clippy => {
                "cargo clippy --fix --allow-dirty --allow-staged --allow-no-vcs --target-dir /tmp/pushpals-fix-target"
            }
            Self::Ruff => "ruff check --fix .",
        }
    }

    /// The program it needs on the machine.
    pub fn program(self) -> &'static str {
        match self {
            Self::Clippy => "cargo-clippy",
            Self::Ruff => "ruff",
        }
    }
}

/// The linters the tree calls for.
pub(crate) fn linters_for(files: &[String]) -> Vec<Linter> {
    let mut out = Vec::new();
    if files.iter().any(|f| f == "Cargo.toml") {
        out.push(Linter::Clippy);
    }
    if files
        .iter()
        .any(|f| f == "ruff.toml" || f == ".ruff.toml" || f == "pyproject.toml")
        && files.iter().any(|f| f.ends_with(".py"))
    {
        out.push(Linter::Ruff);
    }
    out
}

fn finding(linter: Linter, rule: &str, message: &str, file: &str, line: u64, level: &str) -> Found {
    Found {
        kind: "lint",
        severity: if level == "error" { "medium" } else { "low" },
        title: format!("{}: {message}", rule),
        file: Some(file.to_owned()),
        line: Some(line),
        // The line moves as code is added above; the rule and message do not.
        key: format!("{}:{rule}:{message}", linter.name()),
        evidence: json!({ "tool": linter.name(), "rule": rule, "command": linter.command(), "fixer": linter.fixer() }),
    }
}

/// Findings in a linter's output; `None` when the output is not what the
/// linter writes (the raw output is then kept as evidence by the caller).
pub(crate) fn parse(linter: Linter, output: &str) -> Option<Vec<Found>> {
    match linter {
        Linter::Clippy => {
            let mut found = Vec::new();
            let mut any_json = false;
            for line in output.lines().filter(|l| l.starts_with('{')) {
                let Ok(value) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                any_json = true;
                if value["reason"] != "compiler-message" {
                    continue;
                }
                let message = &value["message"];
                let level = message["level"].as_str().unwrap_or("warning");
                if !matches!(level, "warning" | "error") {
                    continue;
                }
                let Some(span) = message["spans"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["is_primary"] == true))
                else {
                    continue;
                };
                let rule = message["code"]["code"].as_str().unwrap_or(level);
                found.push(finding(
                    linter,
                    rule,
                    message["message"].as_str().unwrap_or(""),
                    span["file_name"].as_str().unwrap_or("?"),
                    span["line_start"].as_u64().unwrap_or(0),
                    level,
                ));
            }
            (any_json || output.trim().is_empty()).then_some(found)
        }
        Linter::Ruff => {
            let items: Vec<Value> = serde_json::from_str(output.trim()).ok()?;
            Some(
                items
                    .iter()
                    .map(|item| {
                        finding(
                            linter,
                            item["code"].as_str().unwrap_or("ruff"),
                            item["message"].as_str().unwrap_or(""),
                            item["filename"].as_str().unwrap_or("?"),
                            item["location"]["row"].as_u64().unwrap_or(0),
                            "warning",
                        )
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clippy_and_ruff_output_become_findings() {
        let clippy = r#"{"reason":"compiler-artifact"}
{"reason":"compiler-message","message":{"level":"warning","message":"unneeded `return` statement","code":{"code":"clippy::needless_return"},"spans":[{"is_primary":true,"file_name":"src/lib.rs","line_start":3}]}}
{"reason":"compiler-message","message":{"level":"note","message":"x","code":null,"spans":[]}}"#;
        let found = parse(Linter::Clippy, clippy).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].title,
            "clippy::needless_return: unneeded `return` statement"
        );
        assert_eq!(
            (found[0].file.as_deref(), found[0].line),
            (Some("src/lib.rs"), Some(3))
        );
        let ruff = r#"[{"code":"F401","message":"`os` imported but unused","filename":"app.py","location":{"row":1,"column":8}}]"#;
        let found = parse(Linter::Ruff, ruff).unwrap();
        assert_eq!(found[0].title, "F401: `os` imported but unused");
        assert!(parse(Linter::Ruff, "ruff: command not found").is_none());
        assert!(parse(Linter::Clippy, "error: could not compile").is_none());
    }
}
