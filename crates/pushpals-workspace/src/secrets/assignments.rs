//! Names and the values given to them, read from one line in the ways
//! people write them: `KEY=value`, `KEY: value`, `"key": "value"`,
//! `key = "value"`, `const KEY: &str = "value"`, `KEY := "value"`,
//! `os.environ["KEY"] = "value"`, `call(key="value")`, `--key value`, and
//! a Kubernetes `- name: KEY` whose `value:` is on the next line.

use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

/// One name and its value's place in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment<'a> {
    /// The name.
    pub key: &'a str,
    /// Where the value is in the line (quotes excluded).
    pub value: Range<usize>,
}

/// `key`, an optional closing quote or bracket, the operator (after a
/// type, `: &str =`; or a space before a quoted value), an optional
/// opening quote, the value.
static ASSIGNMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        (?P<key>[A-Za-z_][A-Za-z0-9_.-]*)
        ["'\]]{0,2}
        (?:
            \s* : \s* &?[A-Za-z][A-Za-z0-9_<>]* \s* =
          | \s* (?: := | => | = | : )
          | \s+ ["']
        )
        \s*
        ["'`]?
        (?P<value>[^\s"'`,;\\]+)
        "#,
    )
    .ok()
});

/// `--key value` or `--key=value` on a command line.
static FLAG: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"--(?P<key>[A-Za-z][A-Za-z0-9_-]*)[= ]["']?(?P<value>[^\s"']+)"#).ok()
});

/// `?key=value&other=value` inside a URL or a connection string.
static PARAMETER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"[?&;](?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>[^&\s"'#;]+)"#).ok()
});

/// `- name: KEY` (a Kubernetes or compose env entry).
static ENV_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"^\s*-?\s*name:\s*["']?(?P<key>[A-Za-z_][A-Za-z0-9_]*)["']?\s*$"#).ok()
});

/// `value: ...` under such a name.
static ENV_VALUE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"^\s*value:\s*["']?(?P<value>[^\s"']+)"#).ok());

/// The assignments in `line`; `previous` is the line before it, for a
/// `value:` whose name is there.
pub(crate) fn assignments<'a>(line: &'a str, previous: Option<&'a str>) -> Vec<Assignment<'a>> {
    let mut found = Vec::new();
    if let (Some(name), Some(value)) = (ENV_NAME.as_ref(), ENV_VALUE.as_ref())
        && let Some(previous) = previous
        && let Some(key) = name.captures(previous).and_then(|c| c.name("key"))
        && let Some(value) = value.captures(line).and_then(|c| c.name("value"))
    {
        found.push(Assignment {
            key: key.as_str(),
            value: value.range(),
        });
        return found;
    }
    for pattern in [ASSIGNMENT.as_ref(), FLAG.as_ref(), PARAMETER.as_ref()]
        .into_iter()
        .flatten()
    {
        for captures in pattern.captures_iter(line) {
            let (Some(key), Some(value)) = (captures.name("key"), captures.name("value")) else {
                continue;
            };
            // A value inside another's (a URL's parameter) is read too.
            if found
                .iter()
                .any(|a: &Assignment<'_>| a.value == value.range())
            {
                continue;
            }
            // `key.sub: value`: the last part names it.
            let key = key.as_str().rsplit('.').next().unwrap_or(key.as_str());
            found.push(Assignment {
                key,
                value: value.range(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> Vec<(String, String)> {
        assignments(line, None)
            .into_iter()
            .map(|a| (a.key.to_owned(), line[a.value].to_owned()))
            .collect()
    }

    fn first(line: &str) -> (String, String) {
        pairs(line).into_iter().next().unwrap_or_default()
    }

    #[test]
    fn the_common_ways_of_writing_a_value_are_read() {
        let want = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            first("DB_PASSWORD=Falcon!Stone1"),
            want("DB_PASSWORD", "Falcon!Stone1")
        );
        assert_eq!(first("export TOKEN=\"abc123\""), want("TOKEN", "abc123"));
        assert_eq!(
            first("  password: s3cr3t-value"),
            want("password", "s3cr3t-value")
        );
        assert_eq!(first("  \"apiKey\": \"k-123\","), want("apiKey", "k-123"));
        assert_eq!(first("secret = 'x1'"), want("secret", "x1"));
        assert_eq!(
            first("pub const API_KEY: &str = \"k9\";"),
            want("API_KEY", "k9")
        );
        assert_eq!(first("static final String KEY = \"v\";"), want("KEY", "v"));
        assert_eq!(first("token := \"t0\""), want("token", "t0"));
        assert_eq!(
            first("os.environ[\"HF_TOKEN\"] = \"hf_x\""),
            want("HF_TOKEN", "hf_x")
        );
        assert_eq!(first("login(token=\"hf_y\")"), want("token", "hf_y"));
        assert_eq!(first("ENV SECRET_KEY=abc"), want("SECRET_KEY", "abc"));
        assert_eq!(first("      - SMTP_PASS=pw1"), want("SMTP_PASS", "pw1"));
        assert_eq!(
            first("run --password hunter22"),
            want("password", "hunter22")
        );
        assert_eq!(first("db.password: pw2"), want("password", "pw2"));
        let url = pairs("url=jdbc:postgresql://db/app?user=app&password=pw3");
        assert!(url.contains(&want("password", "pw3")), "{url:?}");
        let k8s = assignments(
            "              value: \"v8\"",
            Some("            - name: DD_API_KEY"),
        );
        assert_eq!(k8s.len(), 1);
        assert_eq!(k8s[0].key, "DD_API_KEY");
    }
}
