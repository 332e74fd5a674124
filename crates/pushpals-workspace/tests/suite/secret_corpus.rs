//! The secret scanner scored on the generated corpus (fixed seed): line
//! recall, file recall and files without secrets that get a finding. The
//! figures are printed with what was missed; the test fails under the
//! goal.

use pushpals_test_support::secret_corpus::{score, secret_corpus};
use pushpals_workspace::SecretScanner;

const SEED: u64 = 20_261_206;

#[test]
fn the_scanner_meets_its_goal_on_the_generated_corpus() {
    let corpus = secret_corpus(SEED);
    let scanner = SecretScanner::builtin().unwrap();
    let score = score(&corpus, |path, content| {
        scanner
            .scan_file(path, content)
            .iter()
            .map(|finding| finding.line as usize)
            .collect()
    });
    println!(
        "{} files, {} kinds: line recall {:.3}, file recall {:.3}, false-positive files {}",
        score.files,
        score.kinds,
        score.line_recall,
        score.file_recall,
        score.false_positive_files.len()
    );
    let mut missed_kinds: Vec<_> = score.missed.iter().map(|(_, _, kind)| *kind).collect();
    missed_kinds.sort();
    missed_kinds.dedup();
    println!("missed kinds: {missed_kinds:?}");
    for (file, line, kind) in score.missed.iter().take(40) {
        println!("  missed {kind} at {file}:{line}");
    }
    for file in &score.false_positive_files {
        let findings = scanner.scan_file(
            file,
            &corpus.iter().find(|f| &f.path == file).unwrap().content,
        );
        let rules: Vec<_> = findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
        println!("  false positive {file}: {rules:?}");
    }
    assert!(
        score.line_recall >= 0.95,
        "line recall {:.3}",
        score.line_recall
    );
    assert!(
        score.file_recall >= 0.99,
        "file recall {:.3}",
        score.file_recall
    );
    assert!(
        score.false_positive_files.len() <= 2,
        "{} false-positive files",
        score.false_positive_files.len()
    );
}

/// Every tracked text file of a repository, scanned; findings the
/// repository's own allowlist allows are left out.
fn findings_in_repository(root: &std::path::Path) -> Vec<String> {
    let scanner = SecretScanner::builtin().unwrap();
    let allowlist = std::fs::read_to_string(root.join(pushpals_workspace::SECRET_ALLOWLIST_PATH))
        .map(|text| pushpals_workspace::SecretAllowlist::from_toml(&text).unwrap())
        .unwrap_or_default();
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(listed.status.success());
    let mut found = Vec::new();
    for path in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        let Ok(text) = std::fs::read_to_string(root.join(&path)) else {
            continue;
        };
        for finding in scanner.scan_file(&path, &text) {
            if !allowlist.allows(&finding) {
                found.push(format!("{path}:{} {}", finding.line, finding.rule));
            }
        }
    }
    found
}

#[test]
fn real_projects_and_this_repository_have_no_findings_but_their_allowed_test_data() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/repos");
    let dir = tempfile::tempdir().unwrap();
    for name in ["itsdangerous", "itoa", "clsx"] {
        let target = dir.path().join(name);
        let cloned = std::process::Command::new("git")
            .args(["clone", "-q", "-b", "main"])
            .arg(shared.join(format!("{name}.bundle")))
            .arg(&target)
            .status()
            .unwrap();
        assert!(cloned.success(), "cannot clone {name}");
        assert_eq!(
            findings_in_repository(&target),
            Vec::<String>::new(),
            "{name}"
        );
    }
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert_eq!(
        findings_in_repository(&ours),
        Vec::<String>::new(),
        "this repository"
    );
}
