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
