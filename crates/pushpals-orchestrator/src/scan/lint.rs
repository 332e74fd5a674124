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
    /// `eslint -f json`, from the project's own node_modules.
    Eslint,
    /// `mypy` with error codes.
    Mypy,
    /// `tsc --noEmit`, from the project's own node_modules.
    Tsc,
}

impl Linter {
    /// The command line.
    pub fn command(self) -> &'static str {
        match self {
            Self::Clippy => {
                "cargo clippy --quiet --message-format=json --target-dir /tmp/pushpals-scan-target"
            }
            Self::Ruff => "ruff check --output-format json .",
            Self::Eslint => "npx --no-install eslint -f json .",
            Self::Mypy => "mypy --no-error-summary --show-error-codes --no-pretty .",
            Self::Tsc => "npx --no-install tsc --noEmit --pretty false",
        }
    }

    /// Its name in findings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clippy => "clippy",
            Self::Ruff => "ruff",
            Self::Eslint => "eslint",
            Self::Mypy => "mypy",
            Self::Tsc => "tsc",
        }
    }

    /// How to install it, for the report.
    pub fn install_hint(self) -> &'static str {
        match self {
            Self::Clippy => "rustup component add clippy",
            Self::Ruff => "pip install ruff",
            Self::Eslint | Self::Tsc => "install Node.js, then npm ci in the repository",
            Self::Mypy => "pip install mypy",
        }
    }

    /// The mechanical fix, when the tool has one.
    pub fn fixer(self) -> Option<&'static str> {
        Some(match self {
            // Build output goes to the sandbox's own /tmp, not into the change.
            Self::Clippy => {
                "cargo clippy --fix --allow-dirty --allow-staged --allow-no-vcs --target-dir /tmp/pushpals-fix-target"
            }
            Self::Ruff => "ruff check --fix .",
            Self::Eslint => "npx --no-install eslint --fix .",
            Self::Mypy | Self::Tsc => return None,
        })
    }

    /// The program it needs on the machine.
    pub fn program(self) -> &'static str {
        match self {
            Self::Clippy => "cargo-clippy",
            Self::Ruff => "ruff",
            Self::Eslint | Self::Tsc => "npx",
            Self::Mypy => "mypy",
        }
    }
}

/// The linters the tree calls for (`mentions(file, word)`: whether a
/// file's text names a word, for package manifests).
pub(crate) fn linters_for(files: &[String], mentions: &dyn Fn(&str, &str) -> bool) -> Vec<Linter> {
    let mut out = Vec::new();
    let has = |name: &str| files.iter().any(|f| f == name);
    if has("Cargo.toml") {
        out.push(Linter::Clippy);
    }
    let python = files.iter().any(|f| f.ends_with(".py"));
    if python && (has("ruff.toml") || has(".ruff.toml") || has("pyproject.toml")) {
        out.push(Linter::Ruff);
    }
    if python
        && (has("mypy.ini")
            || has(".mypy.ini")
            || mentions("pyproject.toml", "mypy")
            || mentions("setup.cfg", "mypy"))
    {
        out.push(Linter::Mypy);
    }
    if mentions("package.json", "eslint") {
        out.push(Linter::Eslint);
    }
    if has("tsconfig.json") {
        out.push(Linter::Tsc);
    }
    out
}

/// A path a tool printed absolute (eslint), made relative to the scanned
/// tree when it lies under a scan directory.
fn root_relative(path: &str) -> String {
    match path
        .find("/scan-")
        .and_then(|i| path[i + 1..].find('/').map(|j| i + 1 + j + 1))
    {
        Some(start) => path[start..].to_owned(),
        None => path.trim_start_matches("./").to_owned(),
    }
}

fn finding(linter: Linter, rule: &str, message: &str, file: &str, line: u64, level: &str) -> Found {
    Found {
        kind: "lint",
        severity: if level == "error" { "medium" } else { "low" },
        title: format!("{rule}: {message}"),
        file: Some(file.to_owned()),
        line: Some(line),
        // The line moves as code is added above; the rule and message do not.
        key: format!("{}:{rule}:{message}", linter.name()),
        evidence: json!({
            "tool": linter.name(),
            "rule": rule,
            "command": linter.command(),
            "fixer": linter.fixer(),
        }),
    }
}

fn clippy(output: &str) -> Option<Vec<Found>> {
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
        found.push(finding(
            Linter::Clippy,
            message["code"]["code"].as_str().unwrap_or(level),
            message["message"].as_str().unwrap_or(""),
            span["file_name"].as_str().unwrap_or("?"),
            span["line_start"].as_u64().unwrap_or(0),
            level,
        ));
    }
    (any_json || output.trim().is_empty()).then_some(found)
}

fn by_pattern(
    linter: Linter,
    output: &str,
    pattern: &str,
    ok_without_match: bool,
) -> Option<Vec<Found>> {
    let pattern = regex::Regex::new(pattern).ok()?;
    let mut found = Vec::new();
    let mut matched = false;
    for line in output.lines() {
        let Some(c) = pattern.captures(line.trim_end()) else {
            continue;
        };
        matched = true;
        let get = |name: &str| c.name(name).map_or("", |m| m.as_str());
        let rule = if get("rule").is_empty() {
            linter.name()
        } else {
            get("rule")
        };
        found.push(finding(
            linter,
            rule,
            get("message"),
            get("file"),
            get("line").parse().unwrap_or(0),
            get("level"),
        ));
    }
    (matched || ok_without_match).then_some(found)
}

/// Findings in a linter's output; `None` when the output is not what the
/// linter writes (the caller keeps the raw output as evidence).
pub(crate) fn parse(linter: Linter, output: &str) -> Option<Vec<Found>> {
    match linter {
        Linter::Clippy => clippy(output),
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
        Linter::Eslint => {
            let files: Vec<Value> = serde_json::from_str(output.trim()).ok()?;
            let mut found = Vec::new();
            for file in &files {
                let path = root_relative(file["filePath"].as_str().unwrap_or("?"));
                for message in file["messages"].as_array().into_iter().flatten() {
                    let level = if message["severity"] == 2 {
                        "error"
                    } else {
                        "warning"
                    };
                    found.push(finding(
                        linter,
                        message["ruleId"].as_str().unwrap_or("eslint"),
                        message["message"].as_str().unwrap_or(""),
                        &path,
                        message["line"].as_u64().unwrap_or(0),
                        level,
                    ));
                }
            }
            Some(found)
        }
        Linter::Mypy => by_pattern(
            linter,
            output,
            r"^(?P<file>.+?):(?P<line>\d+): (?P<level>error|warning): (?P<message>.*?)(?:\s+\[(?P<rule>[\w-]+)\])?$",
            output.trim().is_empty() || output.contains("Success"),
        ),
        Linter::Tsc => by_pattern(
            linter,
            output,
            r"^(?P<file>.+?)\((?P<line>\d+),\d+\): (?P<level>error|warning) (?P<rule>TS\d+): (?P<message>.*)$",
            output.trim().is_empty(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linter_output_becomes_findings() {
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
        assert_eq!(
            parse(Linter::Ruff, ruff).unwrap()[0].title,
            "F401: `os` imported but unused"
        );
        let eslint = r#"[{"filePath":"/data/scan-42/web/app.js","messages":[{"ruleId":"no-unused-vars","severity":2,"message":"'x' is assigned a value but never used.","line":2}]}]"#;
        let found = parse(Linter::Eslint, eslint).unwrap();
        assert_eq!(
            (found[0].file.as_deref(), found[0].line),
            (Some("web/app.js"), Some(2))
        );
        assert_eq!(found[0].severity, "medium");
        let mypy = "app.py:3: error: Incompatible return value type (got \"str\", expected \"int\")  [return-value]\n";
        let found = parse(Linter::Mypy, mypy).unwrap();
        assert!(
            found[0]
                .title
                .starts_with("return-value: Incompatible return value type"),
            "{}",
            found[0].title
        );
        let tsc =
            "src/a.ts(4,7): error TS2322: Type 'string' is not assignable to type 'number'.\n";
        let found = parse(Linter::Tsc, tsc).unwrap();
        assert_eq!(
            found[0].title,
            "TS2322: Type 'string' is not assignable to type 'number'."
        );
        assert_eq!(found[0].line, Some(4));
    }

    #[test]
    fn output_that_is_not_the_tools_is_refused() {
        assert!(parse(Linter::Ruff, "ruff: command not found").is_none());
        assert!(parse(Linter::Clippy, "error: could not compile").is_none());
        assert!(
            parse(
                Linter::Tsc,
                "npm ERR! could not determine executable to run"
            )
            .is_none()
        );
        assert!(parse(Linter::Eslint, "Oops! Something went wrong!").is_none());
        assert!(parse(Linter::Mypy, "mypy: can't read file").is_none());
    }

    #[test]
    fn the_tree_decides_which_linters_run() {
        let files: Vec<String> = ["package.json", "tsconfig.json", "app.py", "mypy.ini"]
            .map(String::from)
            .to_vec();
        let mentions = |file: &str, word: &str| file == "package.json" && word == "eslint";
        assert_eq!(
            linters_for(&files, &mentions),
            [Linter::Mypy, Linter::Eslint, Linter::Tsc]
        );
    }
}
