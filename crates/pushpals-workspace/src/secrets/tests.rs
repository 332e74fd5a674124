//! The scanner's own tests: findings in diffs and files, redaction, rule
//! loading and what is no secret.

use super::*;

const AWS: &str = "AKIAQWERTYUIOPASDFGH";

fn scanner() -> SecretScanner {
    SecretScanner::builtin().unwrap()
}

#[test]
fn finds_planted_keys_in_added_lines_with_their_line_numbers() {
    let diff = format!(
        "diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ -1,2 +1,4 @@\n import os\n+KEY_ID = \"{AWS}\"\n-old = 1\n+pem = '''\n+-----BEGIN RSA PRIVATE KEY-----\n"
    );
    let findings = scanner().scan_diff(&diff);
    let rules: Vec<_> = findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert_eq!(rules, vec![("aws-access-key-id", 2), ("private-key", 4)]);
    assert_eq!(findings[0].file, "config.py");
    assert_eq!(findings[0].masked, "AKIA… (20 characters)");
    assert!(
        !format!("{findings:?}").contains(AWS),
        "the secret must not appear in findings"
    );
}

#[test]
fn removed_lines_examples_and_low_entropy_values_are_not_findings() {
    let diff = format!(
        "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1,3 @@\n-k = \"{AWS}\"\n+password = \"aaaaaaaaaaaaaaaa\"\n+token = \"example-token-1234567\"\n+url = 'postgres://user@host/db'\n"
    );
    assert_eq!(scanner().scan_diff(&diff), vec![]);
}

#[test]
fn sensitive_files_are_findings_by_name() {
    let diff = "diff --git a/.env b/.env\nnew file mode 100644\n--- /dev/null\n+++ b/.env\n@@ -0,0 +1 @@\n+DEBUG=1\ndiff --git a/.env.example b/.env.example\n--- /dev/null\n+++ b/.env.example\n@@ -0,0 +1 @@\n+DEBUG=1\ndiff --git a/keys/id_ed25519 b/keys/id_ed25519\nBinary files /dev/null and b/keys/id_ed25519 differ\n";
    let findings = scanner().scan_diff(diff);
    let files: Vec<_> = findings.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(files, vec![".env", "keys/id_ed25519"]);
}

#[test]
fn tokens_of_common_services_and_generic_assignments_are_found() {
    let lines = [
        "token = ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123",
        "DATABASE_URL=postgres://app:S3cr3t-Pa55w0rd@db:5432/app",
        "api_key: 'Zx8#kLm2Qp9$Rt4vWn7Y'",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "OPENAI_API_KEY=sk-proj-Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF",
    ];
    for line in lines {
        let redacted = scanner().redact(line);
        assert!(
            redacted.contains("[REDACTED:"),
            "not found in {line:?}: {redacted}"
        );
    }
}

#[test]
fn whole_files_are_scanned_for_a_tree() {
    let findings = scanner().scan_file("deploy/.env", &format!("A=1\nKEY={AWS}\n"));
    let found: Vec<_> = findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert_eq!(found, vec![("sensitive-file", 0), ("aws-access-key-id", 2)]);
    assert!(
        scanner()
            .scan_file("Cargo.lock", &format!("k = \"{AWS}\""))
            .is_empty()
    );
}

#[test]
fn redaction_keeps_everything_else() {
    let text = format!("start\nkey={AWS} end\nlast\n");
    let redacted = scanner().redact(&text);
    assert_eq!(
        redacted,
        "start\nkey=[REDACTED:aws-access-key-id] end\nlast\n"
    );
    assert!(matches!(scanner().redact("nothing here"), Cow::Borrowed(_)));
}

#[test]
fn ordinary_values_in_command_output_are_left_alone() {
    let output = "PWD=/tmp/data/worktrees/t1\nHOME=/tmp/home\nSECRET_DIR=/var/lib/app/secrets\n\
                  TOKEN_TTL=3600\npassword: None\napi_key = os.environ[\"API_KEY\"]\n";
    assert!(
        matches!(scanner().redact(output), Cow::Borrowed(_)),
        "{}",
        scanner().redact(output)
    );
    // A SealedSecret's values are encrypted; its names look secret.
    let sealed = "kind: SealedSecret\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA9rO43cGDEqAgBy3i4OJSWK\n";
    assert!(scanner().scan_file("k8s/sealed.yaml", sealed).is_empty());
    // A certificate is public; a private key in a .pem is not.
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert!(scanner().scan_file("certs/ca.pem", cert).is_empty());
    let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    let rules: Vec<_> = scanner()
        .scan_file("certs/key.pem", key)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, ["sensitive-file", "private-key"]);
}

#[test]
fn a_rule_whose_examples_fail_does_not_load_and_is_named() {
    let missing = "[[rule]]\nid = \"acme\"\ndescription = \"d\"\nregex = 'acme_[0-9]{8}'\nexamples = ['acme_1234']\n";
    let err = scanner()
        .with_user_rules(missing, "secrets.toml")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("rule acme: finds nothing in its example"),
        "{err}"
    );
    let wrong = "[[rule]]\nid = \"acme\"\ndescription = \"d\"\nregex = 'acme_[0-9]{8}'\ncounter_examples = ['acme_12345678']\n";
    let err = scanner()
        .with_user_rules(wrong, "secrets.toml")
        .unwrap_err();
    assert!(err.to_string().contains("in its counter-example"), "{err}");
    let unknown = "[[rule]]\nid = \"acme\"\ndescription = \"d\"\nregex = 'x'\ndecode = 'rot13'\n";
    let err = scanner()
        .with_user_rules(unknown, "secrets.toml")
        .unwrap_err();
    assert!(err.to_string().contains("unknown decode"), "{err}");
}

#[test]
fn user_rules_extend_and_bad_rules_are_named() {
    let scanner = scanner()
        .with_user_rules(
            "[[rule]]\nid = \"acme\"\ndescription = \"an Acme key\"\nregex = 'acme_[0-9]{8}'\n",
            "secrets.toml",
        )
        .unwrap();
    assert!(
        scanner
            .redact("x acme_12345678")
            .contains("[REDACTED:acme]")
    );
    let err = SecretScanner::builtin()
        .unwrap()
        .with_user_rules(
            "[[rule]]\nid = \"x\"\ndescription = \"d\"\nregex = '('\n",
            "secrets.toml",
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("secrets.toml: rule x: bad regex"),
        "{err}"
    );
}
