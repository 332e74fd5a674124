//! A task's resident sandbox: commands of one worktree start inside one
//! bubblewrap that stays up, each still in its own process group with its
//! own limits; nothing crosses to another worktree's sandbox, nothing a
//! command leaves behind outlives it, and a sandbox that is gone or bound
//! to a directory no longer there is never used.

use pushpals_sandbox::{BwrapConfig, BwrapRunner, CommandOutcome, CommandSpec, Limits, Runner};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

fn runner(fresh_per_command: bool) -> BwrapRunner {
    BwrapRunner::new(BwrapConfig {
        limits: Limits {
            cpu_secs: 77,
            processes: 64,
            ..Limits::default()
        },
        helper: Some((
            PathBuf::from(env!("CARGO_BIN_EXE_pushpals-sandbox-helper")),
            Vec::new(),
        )),
        fresh_per_command,
        ..BwrapConfig::default()
    })
    .expect("the sandbox must be usable on this machine (is bubblewrap installed?)")
}

fn spec(worktree: &Path, line: &str) -> CommandSpec {
    CommandSpec {
        command_line: line.to_owned(),
        cwd: worktree.to_path_buf(),
        timeout: Duration::from_secs(30),
        env: vec![("TASK_VAR".into(), "t1".into())],
        read_only_paths: Vec::new(),
        network_proxy: None,
        gateway: None,
        home: None,
        session: None,
        alias: None,
    }
}

async fn run_with(
    runner: &BwrapRunner,
    spec: CommandSpec,
    cancel: watch::Receiver<bool>,
) -> (CommandOutcome, String, String) {
    let (tx, rx) = mpsc::channel::<pushpals_sandbox::OutputChunk>(64);
    let collector = tokio::spawn(super::collect(rx));
    let outcome = runner.run(spec, tx, cancel).await.unwrap();
    let (out, err) = collector.await.unwrap();
    (
        outcome,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

async fn run(runner: &BwrapRunner, worktree: &Path, line: &str) -> (CommandOutcome, String) {
    let (_cancel_tx, cancel) = watch::channel(false);
    let (outcome, stdout, _) = run_with(runner, spec(worktree, line), cancel).await;
    (outcome, stdout)
}

#[tokio::test]
async fn a_tasks_commands_share_its_sandbox_and_other_tasks_do_not() {
    let runner = runner(false);
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (outcome, _) = run(&runner, one.path(), "echo kept > /tmp/mark").await;
    assert!(outcome.succeeded());
    let (_, seen) = run(&runner, one.path(), "cat /tmp/mark; echo $TASK_VAR").await;
    assert_eq!(
        seen, "kept\nt1\n",
        "the task's /tmp lasts between its commands"
    );
    let (outcome, seen) = run(&runner, two.path(), "cat /tmp/mark 2>/dev/null").await;
    assert!(!outcome.succeeded(), "another task sees {seen:?}");
    // Fresh sandboxes, as before, when turned off.
    let fresh = self::runner(true);
    run(&fresh, one.path(), "echo kept > /tmp/mark").await;
    let (outcome, _) = run(&fresh, one.path(), "cat /tmp/mark").await;
    assert!(!outcome.succeeded());
}

#[tokio::test]
async fn each_command_has_its_own_group_and_limits_and_bash() {
    let runner = runner(false);
    let worktree = tempfile::tempdir().unwrap();
    let line = "read -r _ _ _ _ group _ < /proc/self/stat; \
                test \"$group\" = \"$(cut -d' ' -f5 /proc/$$/stat)\" && echo own-group; \
                test \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$ && echo leader; \
                ulimit -t; echo \"${BASH_VERSION:+bash}\"";
    for _ in 0..2 {
        let (outcome, seen) = run(&runner, worktree.path(), line).await;
        assert!(outcome.succeeded(), "{seen}");
        assert_eq!(seen, "own-group\nleader\n77\nbash\n");
    }
    // No descriptor of the helper's reaches a command: not its control
    // socket, not another command's.
    let (outcome, sockets) = run(
        &runner,
        worktree.path(),
        "for fd in /proc/$$/fd/*; do readlink \"$fd\"; done | grep -c socket",
    )
    .await;
    assert_eq!(sockets, "0\n", "{outcome:?}");
    let (outcome, _) = run(&runner, worktree.path(), "exit 7").await;
    assert_eq!(outcome.exit_code, Some(7));
    let (outcome, _) = run(&runner, worktree.path(), "kill -TERM $$").await;
    assert_eq!((outcome.exit_code, outcome.signal), (None, Some(15)));
}

#[tokio::test]
async fn what_a_command_leaves_running_dies_with_it() {
    let runner = runner(false);
    let worktree = tempfile::tempdir().unwrap();
    // A daemon that leaves the command's group and keeps writing.
    let line = "setsid sh -c 'while :; do date +%s%N > beat; sleep 0.05; done' \
                </dev/null >/dev/null 2>&1 & sleep 0.3; echo started";
    let (outcome, seen) = run(&runner, worktree.path(), line).await;
    assert!(outcome.succeeded() && seen == "started\n", "{seen}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = std::fs::read_to_string(worktree.path().join("beat")).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = std::fs::read_to_string(worktree.path().join("beat")).unwrap();
    assert_eq!(first, second, "the daemon is still writing");
}

#[tokio::test]
async fn commands_of_one_task_run_at_once_apart() {
    let runner = runner(false);
    let worktree = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..4)
        .map(|n| {
            let runner = runner.clone();
            let worktree = worktree.path().to_path_buf();
            tokio::spawn(async move {
                let line = format!("sleep 0.2; echo out-{n}; echo err-{n} >&2; exit {n}");
                let (_cancel_tx, cancel) = watch::channel(false);
                run_with(&runner, spec(&worktree, &line), cancel).await
            })
        })
        .collect();
    for (n, run) in runs.into_iter().enumerate() {
        let (outcome, stdout, stderr) = run.await.unwrap();
        assert_eq!(outcome.exit_code, Some(n as i32));
        assert_eq!(
            (stdout, stderr),
            (format!("out-{n}\n"), format!("err-{n}\n"))
        );
    }
}

#[tokio::test]
async fn a_time_limit_and_a_cancel_stop_the_command_and_the_next_one_runs() {
    let runner = runner(false);
    let worktree = tempfile::tempdir().unwrap();
    let mut timed = spec(worktree.path(), "sleep 20");
    timed.timeout = Duration::from_millis(300);
    let (_cancel_tx, cancel) = watch::channel(false);
    let (outcome, _, _) = run_with(&runner, timed, cancel).await;
    assert!(outcome.timed_out);
    assert!(outcome.duration < Duration::from_secs(5));

    let (cancel_tx, cancel) = watch::channel(false);
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel_tx.send(true).unwrap();
    });
    let (outcome, _, _) = run_with(&runner, spec(worktree.path(), "sleep 20"), cancel).await;
    canceller.await.unwrap();
    assert!(outcome.cancelled);
    let (outcome, seen) = run(&runner, worktree.path(), "echo fine").await;
    assert!(outcome.succeeded() && seen == "fine\n");
}

#[tokio::test]
async fn a_replaced_worktree_or_a_dead_sandbox_is_never_used_again() {
    let runner = runner(false);
    let parent = tempfile::tempdir().unwrap();
    let worktree = parent.path().join("wt");
    std::fs::create_dir(&worktree).unwrap();
    run(&runner, &worktree, "echo old > /tmp/mark").await;
    // The worktree is made again at the same path (a remount, a new task).
    std::fs::remove_dir(&worktree).unwrap();
    std::fs::create_dir(&worktree).unwrap();
    let (outcome, seen) = run(&runner, &worktree, "cat /tmp/mark; echo new > here").await;
    assert!(!seen.contains("old"), "the old sandbox was used: {seen}");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(
        std::fs::read_to_string(worktree.join("here")).unwrap(),
        "new\n"
    );

    // A command that kills the helper ends its sandbox: an error, not a
    // hang, and the next command gets a new sandbox.
    let (tx, _rx) = mpsc::channel(64);
    let (_cancel_tx, cancel) = watch::channel(false);
    let ended = runner
        .run(spec(&worktree, "kill -KILL $PPID; sleep 5"), tx, cancel)
        .await;
    match ended {
        Err(error) => assert!(error.to_string().contains("sandbox"), "{error}"),
        Ok(outcome) => assert!(!outcome.succeeded(), "{outcome:?}"),
    }
    let (outcome, seen) = run(&runner, &worktree, "echo again").await;
    assert!(outcome.succeeded() && seen == "again\n", "{seen}");
}

#[tokio::test]
async fn a_released_worktree_ends_its_sandbox() {
    let runner = runner(false);
    let worktree = tempfile::tempdir().unwrap();
    run(&runner, worktree.path(), "echo kept > /tmp/mark").await;
    runner.release(worktree.path()).await;
    let (outcome, _) = run(&runner, worktree.path(), "cat /tmp/mark").await;
    assert!(!outcome.succeeded(), "the released sandbox was used again");
}
