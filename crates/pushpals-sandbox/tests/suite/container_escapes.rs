//! The escape suite against the container backend (Podman with runc, as
//! CI installs it), on an image the test builds from busybox: each test
//! fails if the attempt to get out succeeds.

use pushpals_sandbox::{
    CommandOutcome, CommandSpec, ContainerConfig, ContainerRunner, Limits, RunError, Runner,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub(crate) fn runner() -> ContainerRunner {
    ContainerRunner::new(ContainerConfig {
        engine: "podman".into(),
        image: pushpals_test_support::busybox_image().into(),
        runtime: Some("runc".into()),
        limits: Limits {
            cpu_secs: 60,
            memory_bytes: 256 << 20,
            processes: 64,
            open_files: 256,
            file_size_bytes: 1 << 20,
        },
    })
    .expect("the container backend must be usable (podman, runc)")
}

struct Run {
    outcome: CommandOutcome,
    stdout: String,
    stderr: String,
}

fn spec(worktree: &Path, line: &str, timeout: Duration) -> CommandSpec {
    CommandSpec {
        command_line: line.to_owned(),
        cwd: worktree.to_path_buf(),
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

async fn run_spec(spec: CommandSpec) -> Result<Run, RunError> {
    let (tx, rx) = mpsc::channel::<pushpals_sandbox::OutputChunk>(64);
    let (_cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(super::collect(rx));
    let outcome = runner().run(spec, tx, cancel).await?;
    let (out, err) = collector.await.unwrap();
    Ok(Run {
        outcome,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("worktree")).unwrap();
        std::fs::create_dir_all(dir.path().join("other-worktree")).unwrap();
        std::fs::write(
            dir.path().join("other-worktree/secret.txt"),
            "other task's file\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("home/.ssh")).unwrap();
        std::fs::write(dir.path().join("home/.ssh/id_ed25519"), "PRIVATE KEY\n").unwrap();
        Self { dir }
    }

    fn worktree(&self) -> PathBuf {
        self.dir.path().join("worktree")
    }

    fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn run(&self, line: &str) -> Run {
        run_spec(spec(&self.worktree(), line, Duration::from_secs(30)))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_worktree_is_writable_and_commands_work() {
    let scene = Scene::new();
    let run = scene
        .run("echo hello > made.txt && cat made.txt && pwd && echo task=$PUSHPALS_TASK")
        .await;
    assert!(run.outcome.succeeded(), "{}", run.stderr);
    assert!(run.stdout.starts_with("hello\n"), "{}", run.stdout);
    assert!(run.stdout.contains(&scene.worktree().display().to_string()));
    assert!(run.stdout.contains("task=t1"));
    assert_eq!(
        std::fs::read_to_string(scene.worktree().join("made.txt")).unwrap(),
        "hello\n"
    );
}

#[tokio::test]
async fn writes_outside_and_planted_symlinks_do_not_reach_the_host() {
    let scene = Scene::new();
    let target = scene.outside("escaped.txt");
    let linked = scene.outside("via-symlink.txt");
    std::fs::write(&linked, "original\n").unwrap();
    std::os::unix::fs::symlink(&linked, scene.worktree().join("link")).unwrap();
    let line = format!(
        "echo x > {t}; echo x > ../escaped.txt; echo x > /etc/pushpals-escape; echo changed > link; cat link; true",
        t = target.display()
    );
    let run = scene.run(&line).await;
    assert!(!target.exists(), "wrote {}", target.display());
    assert!(!Path::new("/etc/pushpals-escape").exists());
    assert_eq!(std::fs::read_to_string(&linked).unwrap(), "original\n");
    assert!(!run.stdout.contains("original"), "{}", run.stdout);
}

#[tokio::test]
async fn keys_and_other_worktrees_are_invisible() {
    let scene = Scene::new();
    let line = format!(
        "cat {key}; cat {other}; cat ~/.ssh/id_* ; ls /root; true",
        key = scene.outside("home/.ssh/id_ed25519").display(),
        other = scene.outside("other-worktree/secret.txt").display(),
    );
    let run = scene.run(&line).await;
    assert!(!run.stdout.contains("PRIVATE KEY"), "{}", run.stdout);
    assert!(!run.stdout.contains("other task's file"), "{}", run.stdout);
}

#[tokio::test]
async fn the_network_is_off_and_a_grant_is_refused_not_ignored() {
    let scene = Scene::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let line = format!(
        "echo hi | nc -w 2 127.0.0.1 {port} && echo connected; nslookup example.com && echo resolved; true"
    );
    let run = scene.run(&line).await;
    assert!(!run.stdout.contains("connected"), "{}", run.stdout);
    assert!(!run.stdout.contains("resolved"), "{}", run.stdout);
    assert!(
        listener.accept().is_err(),
        "the listener outside got a connection"
    );

    let mut granted = spec(&scene.worktree(), "true", Duration::from_secs(10));
    granted.network_proxy = Some(scene.outside("proxy.sock"));
    match run_spec(granted).await {
        Err(RunError::Network(why)) => assert!(why.contains("bubblewrap"), "{why}"),
        Err(other) => panic!("expected a network refusal, got {other}"),
        Ok(_) => panic!("a network grant ran without its proxy"),
    }
}

#[tokio::test]
async fn the_environment_does_not_leak_and_privileges_stay_dropped() {
    let scene = Scene::new();
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let run = scene
        .run("env; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; mount -t tmpfs x /mnt && echo mounted; true")
        .await;
    assert!(!run.stdout.contains("CARGO_MANIFEST_DIR"), "{}", run.stdout);
    assert!(run.stdout.contains("HOME=/tmp"), "{}", run.stdout);
    assert!(
        run.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("NoNewPrivs:\t1"), "{}", run.stdout);
    assert!(!run.stdout.contains("mounted"));
}

#[tokio::test]
async fn a_fork_bomb_and_a_disk_filler_are_bounded() {
    let scene = Scene::new();
    let bomb = scene
        .run("bomb() { bomb | bomb & }; bomb; sleep 2; echo survived")
        .await;
    // bash, which runs every line, says `fork: Resource temporarily
    // unavailable` (busybox's shell said "can't fork").
    assert!(
        bomb.stderr.contains("fork: ") && bomb.stderr.contains("Resource temporarily unavailable"),
        "{}",
        bomb.stderr
    );
    assert!(Command::new("true").status().unwrap().success());
    let filler = scene.run("head -c 50000000 /dev/zero > big.bin").await;
    assert!(!filler.outcome.succeeded());
    let size = std::fs::metadata(scene.worktree().join("big.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size <= 1 << 20, "wrote {size} bytes past a 1 MiB limit");
}

#[tokio::test]
async fn nothing_outlives_the_time_limit() {
    let scene = Scene::new();
    let run = run_spec(spec(
        &scene.worktree(),
        "(sleep 2; touch late.txt) & sleep 60",
        Duration::from_millis(800),
    ))
    .await
    .unwrap();
    assert!(run.outcome.timed_out);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !scene.worktree().join("late.txt").exists(),
        "the container outlived its time limit"
    );
}
