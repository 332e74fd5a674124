//! The secret gate and scanner on a repository: its own allowlist of
//! findings (`.pushpals/secrets-allow.toml`), read at the task's base
//! commit (what it names does not block a commit or show in a scan; a task
//! cannot allow its own secret by adding the file; a broken file allows
//! nothing and says so); and what a scan reads only in part is counted.

use super::support::*;
use pushpals_core::{Actor, TaskState};
use pushpals_test_support::TempRepo;

/// Writes an AWS-shaped key without the command line holding one.
const WRITE_KEY: &str = "printf 'key = AKIA%s\\n' QWERTYUIOPASDFGH";

async fn findings_of(f: &Fixture, title: &str, command: &str) -> Vec<String> {
    let task = create(&f.orchestrator, title, command).await;
    wait_until(&f.orchestrator, &task.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    let diff = f.orchestrator.diff(&task.id).await.unwrap();
    diff.secret_findings.into_iter().map(|f| f.file).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repositorys_allowlist_lets_named_findings_through_and_nothing_else() {
    let repo = TempRepo::new();
    repo.write(
        ".pushpals/secrets-allow.toml",
        "# Test data, reviewed.\npaths = [\"fixtures/**\"]\n",
    );
    repo.write("fixtures/.keep", "");
    repo.commit_all("allow fixtures");
    let f = start(repo, "").await;
    let allowed = findings_of(&f, "Fixture key", &format!("{WRITE_KEY} > fixtures/k.txt")).await;
    assert!(allowed.is_empty(), "{allowed:?}");
    let blocked = findings_of(&f, "Source key", &format!("{WRITE_KEY} > src/k.txt")).await;
    assert_eq!(blocked, ["src/k.txt"]);
    // The task's own allowlist is not the base commit's: it allows nothing.
    let own = findings_of(
        &f,
        "Allow itself",
        &format!(
            "printf 'paths = [\"**\"]\\n' > .pushpals/secrets-allow.toml && {WRITE_KEY} > src/own.txt"
        ),
    )
    .await;
    assert_eq!(own, ["src/own.txt"]);

    // The scanner honours it too.
    let report = f
        .orchestrator
        .scan(None, Actor::User("me".into()))
        .await
        .unwrap();
    assert!(
        !report.open.iter().any(|finding| finding.kind == "secret"),
        "{:?}",
        report.open
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_allowlist_allows_nothing_and_the_scan_says_why() {
    let repo = TempRepo::new();
    repo.write(
        ".pushpals/secrets-allow.toml",
        "fingerprints = [\"nothex\"]\n",
    );
    repo.write("fixtures/k.txt", "key = AKIAQWERTYUIOPASDFGH\n");
    repo.commit_all("broken allowlist");
    let f = start(repo, "").await;
    let report = f
        .orchestrator
        .scan(None, Actor::User("me".into()))
        .await
        .unwrap();
    assert!(report.open.iter().any(|finding| finding.kind == "secret"));
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains(".pushpals/secrets-allow.toml")
                && note.contains("16 hexadecimal")),
        "{:?}",
        report.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_counts_the_files_and_lines_it_read_only_in_part() {
    let repo = TempRepo::new();
    std::fs::write(repo.path.join("logo.bin"), [0u8, 1, 2, 0, 159, 146]).unwrap();
    // A minified line: its token is found, its names and values are not read.
    let filler = "a=1;".repeat(1200);
    let token = format!("ghp_{}", "Q8mZ2kL5xR9vT1wN4bY7cJ3hF6dS0aG2pE8u");
    repo.write(
        "web/app.min.js",
        &format!("{filler}var t=\"{token}\";var api_key=\"Zq8Lm2Xv7Rt4Wn9Kb3Yc6Pd1Zq8L\";\n"),
    );
    repo.commit_all("minified");
    let f = start(repo, "").await;
    let report = f
        .orchestrator
        .scan(None, Actor::User("me".into()))
        .await
        .unwrap();
    let secrets: Vec<_> = report
        .open
        .iter()
        .filter(|finding| finding.kind == "secret")
        .map(|finding| finding.title.clone())
        .collect();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert!(secrets[0].contains("github-token"), "{secrets:?}");
    assert!(
        report.notes.iter().any(
            |note| note.contains("1 binary or over-1-MiB files were not read")
                && note.contains("1 lines over 4096 bytes")
        ),
        "{:?}",
        report.notes
    );
}
