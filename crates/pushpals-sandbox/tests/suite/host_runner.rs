//! The host runner against real processes.

use super::collect;
use pushpals_sandbox::{CommandSpec, HostRunner, Runner};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

fn spec(dir: &std::path::Path, line: &str, timeout: Duration) -> CommandSpec {
    CommandSpec {
        command_line: line.to_owned(),
        cwd: dir.to_path_buf(),
        timeout,
        env: vec![("PUSHPALS_TASK".into(), "t1".into())],
        read_only_paths: Vec::new(),
        network_proxy: None,
        gateway: None,
        home: None,
        session: None,
        alias: None,
    }
}

#[tokio::test]
async fn streams_both_streams_and_reports_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(16);
    let (_cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(collect(rx));
    let line = "pwd; echo oops >&2; printf '\\377\\376'; echo $PUSHPALS_TASK; exit 3";
    let outcome = HostRunner
        .run(spec(dir.path(), line, Duration::from_secs(10)), tx, cancel)
        .await
        .unwrap();
    let (out, err) = collector.await.unwrap();
    assert_eq!(outcome.exit_code, Some(3));
    assert!(!outcome.succeeded());
    assert_eq!(outcome.describe(), "exited with code 3");
    let expected = format!("{}\n\u{0}", dir.path().canonicalize().unwrap().display());
    assert!(out.starts_with(&expected.as_bytes()[..expected.len() - 1]));
    assert!(
        out.windows(2).any(|w| w == [0xff, 0xfe]),
        "raw bytes pass through"
    );
    assert!(out.ends_with(b"t1\n"));
    assert_eq!(err, b"oops\n");
}

#[tokio::test]
async fn secrets_in_the_environment_do_not_reach_the_command() {
    // Cargo sets CARGO_MANIFEST_DIR for every test process: it stands for
    // any variable of the orchestrator's that must not reach a command.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(16);
    let (_cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(collect(rx));
    let outcome = HostRunner
        .run(spec(dir.path(), "env", Duration::from_secs(10)), tx, cancel)
        .await
        .unwrap();
    let (out, _) = collector.await.unwrap();
    assert!(outcome.succeeded());
    let names: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n.to_owned()))
        .collect();
    for name in &names {
        assert!(
            [
                "PATH",
                "HOME",
                "USER",
                "LOGNAME",
                "LANG",
                "LC_ALL",
                "TZ",
                "TERM",
                "PWD",
                "SHLVL",
                "_",
                "PUSHPALS_TASK"
            ]
            .contains(&name.as_str()),
            "unexpected variable {name} reached the command"
        );
    }
    assert!(names.contains(&"PUSHPALS_TASK".to_owned()));
}

#[tokio::test]
async fn a_command_past_its_time_limit_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let (tx, rx) = mpsc::channel(16);
    let (_cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(collect(rx));
    let line = format!("(sleep 3; touch {}) & sleep 60", marker.display());
    let started = Instant::now();
    let outcome = HostRunner
        .run(
            spec(dir.path(), &line, Duration::from_millis(300)),
            tx,
            cancel,
        )
        .await
        .unwrap();
    collector.await.unwrap();
    assert!(outcome.timed_out);
    assert!(!outcome.succeeded());
    assert!(outcome.describe().contains("time limit"));
    assert!(started.elapsed() < Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!marker.exists(), "a child of the command outlived the kill");
}

#[tokio::test]
async fn cancelling_stops_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(16);
    let (cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(collect(rx));
    let run = tokio::spawn(async move {
        HostRunner
            .run(
                spec(dir.path(), "sleep 60", Duration::from_secs(120)),
                tx,
                cancel,
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel_tx.send(true).unwrap();
    let outcome = run.await.unwrap().unwrap();
    collector.await.unwrap();
    assert!(outcome.cancelled);
    assert_eq!(outcome.describe(), "cancelled");
}

#[tokio::test]
async fn a_missing_program_and_a_missing_directory_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(16);
    let (_cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(collect(rx));
    let outcome = HostRunner
        .run(
            spec(
                dir.path(),
                "no-such-program-here --flag",
                Duration::from_secs(10),
            ),
            tx,
            cancel.clone(),
        )
        .await
        .unwrap();
    let (_, err) = collector.await.unwrap();
    assert_eq!(outcome.exit_code, Some(127));
    assert_eq!(outcome.describe(), "command not found (exit code 127)");
    assert!(String::from_utf8_lossy(&err).contains("not found"));

    let (tx, _rx) = mpsc::channel(16);
    let err = HostRunner
        .run(
            spec(&dir.path().join("gone"), "true", Duration::from_secs(10)),
            tx,
            cancel,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"));
}

#[tokio::test]
async fn dropping_a_running_command_kills_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let (tx, _rx) = mpsc::channel(16);
    let (_cancel_tx, cancel) = watch::channel(false);
    let line = format!("sleep 1 && touch {}", marker.display());
    let spec = spec(dir.path(), &line, Duration::from_secs(60));
    let run = tokio::spawn(async move { HostRunner.run(spec, tx, cancel).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.abort();
    let _ = run.await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !marker.exists(),
        "the command's children outlived the dropped run"
    );
}

#[tokio::test]
async fn an_agent_with_the_gateway_is_never_run_unconfined() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let (tx, _rx) = mpsc::channel(16);
    let (_cancel_tx, cancel) = watch::channel(false);
    let mut spec = spec(
        dir.path(),
        &format!("touch {}", marker.display()),
        Duration::from_secs(10),
    );
    spec.gateway = Some(dir.path().join("gateway.sock"));
    let error = HostRunner.run(spec, tx, cancel).await.unwrap_err();
    assert!(
        error.to_string().contains("only inside the sandbox"),
        "{error}"
    );
    assert!(!marker.exists(), "the command ran anyway");
}
