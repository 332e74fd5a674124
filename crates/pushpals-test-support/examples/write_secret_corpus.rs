//! Writes the secret corpus to a directory, with `labels.tsv` (path, line,
//! kind per planted secret; negatives listed with line 0 and no kind), so
//! other scanners can be scored on the same files:
//! `cargo run -p pushpals-test-support --example write_secret_corpus -- DIR [SEED]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_test_support::secret_corpus::secret_corpus;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: write_secret_corpus DIR [SEED]"));
    let seed = args
        .next()
        .map_or(20_261_206, |s| s.parse().expect("a number"));
    let mut labels = String::new();
    for file in secret_corpus(seed) {
        let path = dir.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &file.content).unwrap();
        if file.secrets.is_empty() {
            writeln!(labels, "{}\t0\t", file.path).unwrap();
        }
        for secret in &file.secrets {
            writeln!(labels, "{}\t{}\t{}", file.path, secret.line, secret.kind).unwrap();
        }
    }
    std::fs::write(dir.join("labels.tsv"), labels).unwrap();
}
