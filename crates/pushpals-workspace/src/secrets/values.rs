//! What a candidate value is: a secret, or something that only sits where
//! one could (a placeholder, an interpolation, a reference to a vault or
//! to the environment, a piece of code); and the values that are encoded
//! secrets (base64 of `user:password`, of a private key).

/// True when `value` is not a secret whatever rule found it: a
/// placeholder, a template or shell interpolation, a documented example,
/// a reference to where the secret really is.
pub(crate) fn is_stand_in(value: &str) -> bool {
    let lower = value.to_lowercase();
    const INTERPOLATIONS: [&str; 8] = ["${", "{{", "$(", "%(", "#{", "@{", "<%", "}}"];
    if INTERPOLATIONS.iter().any(|marker| value.contains(marker))
        || value.starts_with('$')
        || (value.starts_with('<') && value.ends_with('>'))
        || (value.starts_with('{') && value.ends_with('}'))
    {
        return true;
    }
    // Stripe's test and publishable keys are not secrets.
    if ["sk_test_", "rk_test_", "pk_test_", "pk_live_"]
        .iter()
        .any(|prefix| value.starts_with(prefix))
    {
        return true;
    }
    const WORDS: [&str; 12] = [
        "example",
        "placeholder",
        "changeme",
        "change_me",
        "your_",
        "your-",
        "yourkey",
        "redacted",
        "dummy",
        "_here",
        "replace",
        "xxxxx",
    ];
    if WORDS.iter().any(|word| lower.contains(word)) || value.contains("EXAMPLE") {
        return true;
    }
    const REFERENCES: [&str; 6] = ["vault:", "ref+", "arn:", "secretsmanager", "op://", "sm://"];
    if REFERENCES
        .iter()
        .any(|prefix| lower.starts_with(prefix) || lower.contains(prefix))
    {
        return true;
    }
    // One character over and over: `********`, `000000`.
    let mut chars = value.chars();
    if let Some(first) = chars.next()
        && value.chars().count() >= 4
        && chars.all(|c| c == first)
    {
        return true;
    }
    false
}

/// True when `value` is code, a name or a plain word rather than a literal
/// secret: a dotted or called expression (`os.environ["X"]`,
/// `models.CharField(...)`, `var.db_password`), a path, a number, a
/// boolean or null.
pub(crate) fn is_expression(value: &str) -> bool {
    let lower = value.to_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "none" | "null" | "nil" | "undefined" | "yes" | "no" | "on" | "off"
    ) || value.parse::<f64>().is_ok()
    {
        return true;
    }
    if value.starts_with('/')
        || value.starts_with("./")
        || value.starts_with("../")
        || value.starts_with("~/")
    {
        return true;
    }
    if value.contains(['(', ')', '[', ']']) {
        return true;
    }
    // A type or a path in code: `Vec<Finding>`, `agent::GatewayToken`.
    if value.contains(['<', '>']) || value.contains("::") {
        return true;
    }
    // The name of a variable that holds the secret: `ANTHROPIC_API_KEY`.
    if value.contains('_')
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return true;
    }
    // A file path: `config/secrets.toml`, `.pushpals/secrets-allow.toml`.
    if let Some((_, last)) = value.rsplit_once('/')
        && let Some((_, extension)) = last.rsplit_once('.')
        && (1..=5).contains(&extension.len())
        && extension.chars().all(|c| c.is_ascii_lowercase())
    {
        return true;
    }
    // A URL without credentials is where something is, not a secret.
    if (lower.starts_with("http://") || lower.starts_with("https://")) && !value.contains('@') {
        return true;
    }
    // Words joined by dashes or underscores name something
    // (`billing-db-secret`); a token has digits or mixed case.
    let words: Vec<&str> = value.split(['-', '_']).collect();
    if words.len() >= 3
        && words
            .iter()
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()))
    {
        return true;
    }
    // `a.b.c` of short identifier segments: a reference in code, not a
    // token (a JWT's segments are long).
    let segments: Vec<&str> = value.split('.').collect();
    segments.len() >= 2
        && segments.iter().all(|segment| {
            !segment.is_empty()
                && segment.len() < 30
                && segment
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// True when `value` looks like a password a person chose: long enough,
/// and of at least three of lower case, upper case, digits and symbols,
/// or long and of two.
pub(crate) fn is_password_like(value: &str) -> bool {
    let length = value.chars().count();
    if length < 8 {
        return false;
    }
    let classes = [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
        value.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|present| **present)
    .count();
    classes >= 3 || (classes == 2 && length >= 12 && entropy(value) >= 3.0)
}

/// How a rule's candidate must decode to be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// Base64 of `user:password` (HTTP Basic, Docker's `auth`, npm's
    /// `_auth`).
    Credentials,
    /// Base64 of a PEM private key (a kubeconfig's `client-key-data`).
    PrivateKey,
}

impl Decode {
    /// The decoding a rule names.
    pub(crate) fn named(name: &str) -> Option<Self> {
        match name {
            "base64-credentials" => Some(Self::Credentials),
            "base64-private-key" => Some(Self::PrivateKey),
            _ => None,
        }
    }

    /// True when `value` decodes to what this names.
    pub(crate) fn holds(self, value: &str) -> bool {
        let Some(bytes) = base64_decode(value) else {
            return false;
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return false;
        };
        match self {
            Self::Credentials => text.split_once(':').is_some_and(|(user, password)| {
                !user.is_empty()
                    && !password.is_empty()
                    && !is_stand_in(password)
                    && text.chars().all(|c| !c.is_control())
            }),
            Self::PrivateKey => text.contains("PRIVATE KEY-----"),
        }
    }
}

/// Standard base64 (padding optional); `None` when it is not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Shannon entropy in bits per character.
pub(crate) fn entropy(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0f64;
    for c in text.chars() {
        *counts.entry(c).or_insert(0f64) += 1.0;
        total += 1.0;
    }
    if total == 0.0 {
        return 0.0;
    }
    counts
        .values()
        .map(|count| {
            let p = count / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_told_from_secrets() {
        for value in [
            "${DB_PASSWORD}",
            "{{ .Values.token }}",
            "$(cat pw)",
            "%(secret)s",
            "<your-password>",
            "YOUR_API_KEY_HERE",
            "changeme",
            "xxxxxxxxxxxx",
            "********",
            "vault:secret/db#pw",
            "ref+vault://x",
            "arn:aws:secretsmanager:eu:1:secret:x",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "$NPM_TOKEN",
        ] {
            assert!(is_stand_in(value), "{value}");
        }
        for value in [
            "Falcon!Stone123abcd",
            "ghp_a1B2c3D4e5F6g7H8i9J0",
            "9f86d081884c7d65",
        ] {
            assert!(!is_stand_in(value), "{value}");
        }
    }

    #[test]
    fn code_is_told_from_literals() {
        for value in [
            "process.env.GITHUB_TOKEN",
            "os.environ[\"X\"]",
            "models.CharField(max_length=128)",
            "var.db_password",
            "random_password.api.result",
            "None",
            "3600",
            "/run/secrets/pw",
            "true",
            "https://auth.internal/oauth/token",
            "Vec<pushpals_workspace::SecretFinding>",
            "pushpals_agent::GatewayToken",
            "ANTHROPIC_API_KEY",
            ".pushpals/secrets-allow.toml",
            "billing-prod-database-credentials",
        ] {
            assert!(is_expression(value), "{value}");
        }
        for value in [
            "Falcon!Stone123abcd",
            "eyJhbGciOiJIUzI1NiJ9abcdefghijklmnopqrstuvwxyz.eyJzdWIiOiIxMjM0NTY3ODkwIn0abcdefghijkl",
        ] {
            assert!(!is_expression(value), "{value}");
        }
    }

    #[test]
    fn encoded_credentials_and_keys_decode() {
        // "deploy:S3cret!pw" and "just-a-word".
        assert!(Decode::Credentials.holds("ZGVwbG95OlMzY3JldCFwdw=="));
        assert!(!Decode::Credentials.holds("anVzdC1hLXdvcmQ="));
        assert!(!Decode::Credentials.holds("not base64!"));
        // "-----BEGIN RSA PRIVATE KEY-----".
        assert!(Decode::PrivateKey.holds("LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ=="));
        assert!(!Decode::PrivateKey.holds("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"));
        assert_eq!(
            Decode::named("base64-credentials"),
            Some(Decode::Credentials)
        );
        assert_eq!(Decode::named("rot13"), None);
    }

    #[test]
    fn chosen_passwords_look_like_passwords() {
        assert!(is_password_like("Falcon!Stone123ab"));
        assert!(is_password_like("correcthorse42battery"));
        assert!(!is_password_like("password"));
        assert!(!is_password_like("short1!"));
    }
}
