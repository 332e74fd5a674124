//! Scan time of the static detectors (everything but running tests and
//! linters) on a generated repository of 10,000 files and 2,000 commits,
//! beside the floor under it: bare git exporting the same tree and reading
//! the same history, measured in the same run.
//!
//! Run: `cargo bench -p pushpals-orchestrator --bench scan`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_core::Actor;
use pushpals_orchestrator::{Orchestrator, Settings};
use pushpals_policy::Policy;
use pushpals_sandbox::HostRunner;
use pushpals_store::{Durability, Store};
use pushpals_workspace::Repo;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const FILES: usize = 10_000;
const COMMITS: usize = 2_000;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// 10,000 files in the first commit, then 1,999 commits each changing a
/// few files; written with fast-import so generating it stays quick.
fn generate(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    let mut import = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = std::io::BufWriter::new(import.stdin.take().unwrap());
    let file = |i: usize, rev: usize| {
        let mut text = format!("// module {i}, revision {rev}\n");
        if i.is_multiple_of(50) {
            text.push_str("// TODO: split this module\n");
        }
        for line in 0..20 {
            text.push_str(&format!(
                "pub fn f{i}_{line}(x: u32) -> u32 {{ x * {line} + {rev} }}\n"
            ));
        }
        text
    };
    for commit in 0..COMMITS {
        writeln!(input, "commit refs/heads/main").unwrap();
        writeln!(
            input,
            "committer bench <bench@localhost> {} +0000",
            1_700_000_000 + commit
        )
        .unwrap();
        let message = format!("change {commit}");
        writeln!(input, "data {}\n{message}", message.len()).unwrap();
        let touched: Vec<usize> = if commit == 0 {
            (0..FILES).collect()
        } else {
            (0..3).map(|k| (commit * 7 + k * 1_337) % FILES).collect()
        };
        for i in touched {
            let text = file(i, commit);
            writeln!(input, "M 644 inline src/m{}/f{i}.rs", i / 100).unwrap();
            writeln!(input, "data {}\n{text}", text.len()).unwrap();
        }
        if commit == 0 {
            let readme = "# bench\n\nRun the tests with `cargo test`.\n";
            writeln!(
                input,
                "M 644 inline README.md\ndata {}\n{readme}",
                readme.len()
            )
            .unwrap();
        }
    }
    drop(input);
    assert!(import.wait().unwrap().success());
    git(dir, &["checkout", "-q", "main"]);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let started = Instant::now();
    generate(&repo_dir);
    println!(
        "generated {FILES} files and {COMMITS} commits in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The floor: exporting the tree and reading the history the scanner reads.
    let floor = {
        let out = dir.path().join("floor");
        std::fs::create_dir_all(&out).unwrap();
        let start = Instant::now();
        let archive = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "git archive --format=tar HEAD | tar -x -C {}",
                out.display()
            ))
            .current_dir(&repo_dir)
            .status()
            .unwrap();
        assert!(archive.success());
        for args in [
            vec![
                "log",
                "-p",
                "-U0",
                "--no-color",
                "--first-parent",
                "--max-count=500",
                "HEAD",
            ],
            vec![
                "log",
                "--name-only",
                "--format=",
                "--no-renames",
                "--max-count=500",
                "HEAD",
            ],
        ] {
            let output = Command::new("git")
                .args(&args)
                .current_dir(&repo_dir)
                .output()
                .unwrap();
            assert!(output.status.success());
        }
        let mut files = 0usize;
        let mut stack = vec![out.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    stack.push(entry.path());
                } else {
                    let _ = std::fs::read(entry.path()).unwrap();
                    files += 1;
                }
            }
        }
        assert!(files >= FILES);
        start.elapsed()
    };

    let ours: (std::time::Duration, std::time::Duration) = runtime.block_on(async {
        let data = dir.path().join("data");
        let settings = Settings::from_toml("").unwrap();
        let orchestrator = Orchestrator::start(
            Store::open(&data, Durability::Normal).unwrap(),
            Some(Repo::open(&repo_dir).await.unwrap()),
            Arc::new(HostRunner),
            settings,
            Policy::builtin().unwrap(),
            &data,
        )
        .await
        .unwrap();
        let actor = Actor::User("bench".into());
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let report = orchestrator.scan(None, actor.clone()).await.unwrap();
            times.push(start.elapsed());
            assert!(
                report
                    .open
                    .iter()
                    .any(|f| f.kind == "todo_hotspot" || f.kind == "duplicate_code")
            );
        }
        times.sort();
        // Then a commit changing three files, scanned incrementally.
        for k in 0..3 {
            let path = repo_dir.join(format!("src/m{k}/f{}.rs", k * 100));
            std::fs::write(
                &path,
                format!("// changed {k}\npub fn g() -> u32 {{ {k} }}\n"),
            )
            .unwrap();
        }
        git(&repo_dir, &["commit", "-q", "-am", "three changes"]);
        let start = Instant::now();
        let report = orchestrator
            .scan_changes(None, actor.clone())
            .await
            .unwrap();
        let incremental = start.elapsed();
        assert!(
            report.notes[0].starts_with("incremental: 3 changed files"),
            "{:?}",
            report.notes
        );
        (times[1], incremental)
    });
    let (ours, incremental) = ours;
    // The floor of an incremental scan: git listing and reading the changes.
    let incremental_floor = {
        let start = Instant::now();
        for args in [
            vec!["diff", "--name-only", "HEAD~1", "HEAD"],
            vec!["log", "-p", "-U0", "HEAD~1..HEAD"],
            vec!["log", "--name-only", "--format=", "--max-count=500", "HEAD"],
        ] {
            assert!(
                Command::new("git")
                    .args(&args)
                    .current_dir(&repo_dir)
                    .output()
                    .unwrap()
                    .status
                    .success()
            );
        }
        start.elapsed()
    };
    println!(
        "full scan of {FILES} files, history of the last 500 of {COMMITS} commits (static detectors):"
    );
    println!("  ours:  {:.2}s (median of 3)", ours.as_secs_f64());
    println!(
        "  floor: {:.2}s (git archive | tar, git log -p and --name-only, reading every file)",
        floor.as_secs_f64()
    );
    println!(
        "  ratio: {:.1}x   target: under 10 s",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
    println!("incremental scan of a commit changing 3 files:");
    println!("  ours:  {:.3}s", incremental.as_secs_f64());
    println!(
        "  floor: {:.3}s (git diff --name-only, log -p of the new commit, log --name-only)",
        incremental_floor.as_secs_f64()
    );
    println!(
        "  ratio: {:.1}x   target: under 1 s",
        incremental.as_secs_f64() / incremental_floor.as_secs_f64()
    );
    secret_engine_against_a_regex(&dir.path().join("floor"));
}

/// The secret engine alone over every file of the tree, beside one plain
/// regular expression (the words secrets are kept under) over the same
/// bytes, read into memory first.
fn secret_engine_against_a_regex(tree: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                files.push((entry.path().display().to_string(), text));
            }
        }
    }
    let bytes: usize = files.iter().map(|(_, text)| text.len()).sum();
    let scanner = pushpals_workspace::SecretScanner::builtin().unwrap();
    let plain = regex::Regex::new(r"(?i)(?:secret|token|password|api_?key|private key)").unwrap();
    let time = |f: &dyn Fn() -> usize| {
        let mut samples: Vec<_> = (0..3)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect();
        samples.sort();
        samples[1]
    };
    let ours = time(&|| {
        files
            .iter()
            .map(|(path, text)| scanner.scan_file(path, text).len())
            .sum()
    });
    let floor = time(&|| {
        files
            .iter()
            .map(|(_, text)| plain.find_iter(text).count())
            .sum()
    });
    println!(
        "secret engine over {} files ({:.1} MiB, in memory):",
        files.len(),
        bytes as f64 / f64::from(1 << 20)
    );
    println!("  ours:  {:.3}s (median of 3)", ours.as_secs_f64());
    println!(
        "  floor: {:.3}s (one plain regex of the words secrets are kept under)",
        floor.as_secs_f64()
    );
    println!("  ratio: {:.1}x", ours.as_secs_f64() / floor.as_secs_f64());
}
