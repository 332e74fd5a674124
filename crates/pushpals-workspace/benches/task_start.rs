//! Task start on a generated 10,000-file repository: a task's worktree as
//! Push Pals makes it (an overlay over the base commit's shared pristine
//! tree where the machine can mount one, else a checkout) against the
//! floor, a plain `git worktree add` of the same commit, measured side by
//! side. Run with `cargo bench -p pushpals-workspace --bench task_start`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_workspace::{Overlays, Repo};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: usize = 10_000;
const RUNS: usize = 5;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=b", "-c", "user.email=b@localhost"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    for i in 0..FILES {
        let path = repo_dir.join(format!("d{:03}/f{i:05}.txt", i / 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("file {i}\n{}\n", "x".repeat(200))).unwrap();
    }
    git(&repo_dir, &["init", "-q", "-b", "main"]);
    git(&repo_dir, &["add", "-A"]);
    git(&repo_dir, &["commit", "-q", "-m", "base"]);
    let head = String::from_utf8(
        Command::new("git")
            .current_dir(&repo_dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    // The floor: git's own worktree add, then its removal (not timed).
    let mut floor = Vec::new();
    for run in 0..RUNS {
        let path = dir.path().join(format!("plain-{run}"));
        let started = Instant::now();
        git(
            &repo_dir,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                path.to_str().unwrap(),
                &head,
            ],
        );
        floor.push(started.elapsed());
        git(
            &repo_dir,
            &["worktree", "remove", "--force", path.to_str().unwrap()],
        );
    }

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let repo = Repo::open(&repo_dir).await.unwrap();
    let repo = match Overlays::probe(&data) {
        Ok(overlays) => repo.with_overlays(overlays),
        Err(reason) => {
            println!("no overlays here ({reason}): tasks start with a checkout");
            repo
        }
    };
    let mut ours = Vec::new();
    let mut first = Duration::ZERO;
    for run in 0..=RUNS {
        let path = data.join(format!("worktrees/t{run}"));
        let branch = format!("bench/t{run}");
        let started = Instant::now();
        repo.add_worktree(&path, &branch, &head).await.unwrap();
        let took = started.elapsed();
        // The first task at a base commit also exports its pristine tree.
        if run == 0 {
            first = took;
        } else {
            ours.push(took);
        }
        repo.remove_worktree(&path, &branch).await.unwrap();
    }
    let floor = median(floor);
    let ours = median(ours);
    println!(
        "task start, {FILES} files ({}): ours {:.1} ms (the first at a base commit {:.1} ms); floor `git worktree add` {:.1} ms; ratio {:.3} (goal <= 0.1)",
        repo.task_start(),
        ms(ours),
        ms(first),
        ms(floor),
        ms(ours) / ms(floor)
    );
}
