//! The escape suite: each test tries to get out of the bubblewrap sandbox
//! and fails if the attempt succeeds. Runs against the real sandbox; CI
//! installs bubblewrap.
//!
//! Over 400 lines: the escape suite: one test per attack on the real sandbox.

use pushpals_sandbox::{BwrapConfig, BwrapRunner, CommandOutcome, CommandSpec, Limits, Runner};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

struct Run {
    outcome: CommandOutcome,
    stdout: String,
    stderr: String,
}

pub(crate) fn runner() -> BwrapRunner {
    let limits = Limits {
        cpu_secs: 60,
        memory_bytes: 512 << 20,
        processes: 64,
        open_files: 256,
        file_size_bytes: 1 << 20,
    };
    BwrapRunner::new(BwrapConfig {
        limits,
        toolchain_paths: Vec::new(),
        home_binds: Vec::new(),
        toolchain_env: Vec::new(),
        state_dir: None,
        fresh_per_command: false,
        helper: Some((
            PathBuf::from(env!("CARGO_BIN_EXE_pushpals-sandbox-helper")),
            Vec::new(),
        )),
    })
    .expect("the sandbox must be usable on this machine (is bubblewrap installed?)")
}

/// A temporary directory holding a worktree and things outside it.
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
}

async fn run_in(worktree: &Path, line: &str, timeout: Duration) -> Run {
    run_with(worktree, line, timeout, None).await
}

async fn run_with(
    worktree: &Path,
    line: &str,
    timeout: Duration,
    network_proxy: Option<PathBuf>,
) -> Run {
    run_spec(worktree, line, timeout, |spec| {
        spec.network_proxy = network_proxy
    })
    .await
}

/// Runs `line` with a spec `edit` changes first.
async fn run_spec(
    worktree: &Path,
    line: &str,
    timeout: Duration,
    edit: impl FnOnce(&mut CommandSpec),
) -> Run {
    let (tx, rx) = mpsc::channel::<pushpals_sandbox::OutputChunk>(64);
    let (_cancel_tx, cancel) = watch::channel(false);
    let mut spec = CommandSpec {
        command_line: line.to_owned(),
        cwd: worktree.to_path_buf(),
        timeout,
        env: Vec::new(),
        read_only_paths: Vec::new(),
        network_proxy: None,
        gateway: None,
        home: None,
        session: None,
        alias: None,
    };
    edit(&mut spec);
    let collector = tokio::spawn(super::collect(rx));
    let outcome = runner().run(spec, tx, cancel).await.unwrap();
    let (out, err) = collector.await.unwrap();
    Run {
        outcome,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

async fn run(scene: &Scene, line: &str) -> Run {
    run_in(&scene.worktree(), line, Duration::from_secs(30)).await
}

#[tokio::test]
async fn the_worktree_is_writable_and_commands_work() {
    let scene = Scene::new();
    let run = run(&scene, "echo hello > made.txt && cat made.txt && pwd").await;
    assert!(run.outcome.succeeded(), "{}", run.stderr);
    assert!(run.stdout.starts_with("hello\n"), "{}", run.stdout);
    assert!(run.stdout.contains(&scene.worktree().display().to_string()));
    assert_eq!(
        std::fs::read_to_string(scene.worktree().join("made.txt")).unwrap(),
        "hello\n"
    );
}

#[tokio::test]
async fn writing_outside_by_absolute_path_or_dotdot_does_not_reach_the_host() {
    let scene = Scene::new();
    let target = scene.outside("escaped.txt");
    let line = format!(
        "echo x > {t}; echo x > ../escaped.txt; echo x > /etc/pushpals-escape; touch /usr/pushpals-escape; true",
        t = target.display()
    );
    run(&scene, &line).await;
    assert!(!target.exists(), "wrote {}", target.display());
    assert!(!Path::new("/etc/pushpals-escape").exists());
    assert!(!Path::new("/usr/pushpals-escape").exists());
}

#[tokio::test]
async fn a_planted_symlink_does_not_lead_out() {
    let scene = Scene::new();
    let target = scene.outside("via-symlink.txt");
    std::fs::write(&target, "original\n").unwrap();
    std::os::unix::fs::symlink(&target, scene.worktree().join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", scene.worktree().join("etc-link")).unwrap();
    let run = run(
        &scene,
        "echo changed > link; echo changed > etc-link; cat link",
    )
    .await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "original\n");
    assert!(
        !run.stdout.contains("original"),
        "read through the symlink: {}",
        run.stdout
    );
    assert_ne!(
        std::fs::read_to_string("/etc/hostname").unwrap_or_default(),
        "changed\n"
    );
}

#[tokio::test]
async fn a_hard_link_to_a_file_outside_cannot_be_made() {
    let scene = Scene::new();
    let run = run(&scene, "ln /etc/passwd hard && echo linked").await;
    assert!(
        !run.stdout.contains("linked"),
        "made a hard link to /etc/passwd"
    );
    assert!(!scene.worktree().join("hard").exists());
}

#[tokio::test]
async fn keys_other_worktrees_and_host_tmp_are_invisible() {
    let scene = Scene::new();
    let line = format!(
        "cat {key}; cat {other}; cat ~/.ssh/id_* ; ls /root; test -e /etc/ssl/private && echo host-private-keys; true",
        key = scene.outside("home/.ssh/id_ed25519").display(),
        other = scene.outside("other-worktree/secret.txt").display(),
    );
    let run = run(&scene, &line).await;
    assert!(!run.stdout.contains("PRIVATE KEY"), "{}", run.stdout);
    assert!(!run.stdout.contains("other task's file"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("host-private-keys"),
        "the host's /etc/ssl/private is visible"
    );
}

#[tokio::test]
async fn the_network_is_off() {
    let scene = Scene::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let line = format!(
        "bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo connected; getent hosts example.com && echo resolved; true"
    );
    let run = run(&scene, &line).await;
    assert!(!run.stdout.contains("connected"), "{}", run.stdout);
    assert!(!run.stdout.contains("resolved"), "{}", run.stdout);
    assert!(
        listener.accept().is_err(),
        "the listener outside got a connection"
    );
}

#[tokio::test]
async fn the_orchestrators_environment_does_not_leak() {
    let scene = Scene::new();
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let run = run(&scene, "env").await;
    assert!(run.outcome.succeeded());
    assert!(!run.stdout.contains("CARGO_MANIFEST_DIR"), "{}", run.stdout);
    assert!(run.stdout.contains("HOME=/tmp/home"), "{}", run.stdout);
}

#[tokio::test]
async fn a_fork_bomb_is_bounded() {
    let scene = Scene::new();
    let started = std::time::Instant::now();
    let run = run_in(
        &scene.worktree(),
        "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived",
        Duration::from_secs(10),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    // The machine stays usable: we can still start processes here.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
    // The bomb ran into the process limit.
    let stderr = run.stderr.to_lowercase();
    assert!(
        stderr.contains("fork") || stderr.contains("resource temporarily unavailable"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn the_file_size_limit_stops_a_disk_filler() {
    let scene = Scene::new();
    let run = run(&scene, "head -c 50000000 /dev/zero > big.bin").await;
    assert!(!run.outcome.succeeded());
    let size = std::fs::metadata(scene.worktree().join("big.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size <= 1 << 20, "wrote {size} bytes past a 1 MiB limit");
}

#[tokio::test]
async fn nothing_outlives_the_time_limit() {
    let scene = Scene::new();
    let marker = scene.worktree().join("late.txt");
    let run = run_in(
        &scene.worktree(),
        "(sleep 2; touch late.txt) & setsid sh -c 'sleep 2; touch late2.txt' & sleep 60",
        Duration::from_millis(500),
    )
    .await;
    assert!(run.outcome.timed_out);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !marker.exists(),
        "a background child outlived the time limit"
    );
    assert!(
        !scene.worktree().join("late2.txt").exists(),
        "a setsid child outlived the time limit"
    );
}

#[tokio::test]
async fn privileges_cannot_be_regained() {
    let scene = Scene::new();
    let run = run(&scene, "cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs)'; mount -t tmpfs x /mnt && echo mounted; true").await;
    assert!(
        run.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("NoNewPrivs:\t1"), "{}", run.stdout);
    assert!(!run.stdout.contains("mounted"));
}

/// A one-page HTTP server on the host's loopback.
fn host_http_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello-from-host");
        }
    });
    port
}

#[tokio::test]
async fn granted_network_reaches_only_allowlisted_hosts_through_the_proxy() {
    let scene = Scene::new();
    let port = host_http_server();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let socket = scene.outside("proxy.sock");
    let proxy = pushpals_sandbox::Proxy::start(
        &socket,
        pushpals_sandbox::Allowlist::new(&["localhost".into()]).unwrap(),
        events_tx,
    )
    .unwrap();
    let line = format!(
        "curl -s http://localhost:{port}/; echo; \
         curl -s -o /dev/null -w 'refused:%{{http_code}}' http://127.0.0.1:{port}/; echo; \
         curl -s --noproxy '*' --max-time 3 http://localhost:{port}/ && echo direct-worked; true"
    );
    let run = run_with(
        &scene.worktree(),
        &line,
        Duration::from_secs(30),
        Some(socket.clone()),
    )
    .await;
    assert!(
        run.stdout.contains("hello-from-host"),
        "allowed host not reached: {} {}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("refused:403"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("direct-worked"),
        "reached the host without the proxy"
    );
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.contains(&pushpals_sandbox::NetworkEvent::Allowed {
            host: "localhost".into(),
            port
        }),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| matches!(e, pushpals_sandbox::NetworkEvent::Refused { host, .. } if host == "127.0.0.1")),
        "{seen:?}"
    );
    drop(proxy);
    assert!(!socket.exists());
}

#[tokio::test]
async fn landlock_is_a_second_layer_under_the_mounts() {
    let scene = Scene::new();
    // Landlock reports itself in /proc; the worktree and /tmp stay writable.
    let run = run(&scene, "grep -h . /proc/self/attr/landlock/current 2>/dev/null; echo ok > in-worktree.txt && echo tmp > /tmp/x && cat /tmp/x && echo wrote").await;
    assert!(
        run.stdout.contains("wrote"),
        "{} {}",
        run.stdout,
        run.stderr
    );
    // A path the mounts leave writable but Landlock does not: /run (bwrap's
    // root tmpfs) is writable without Landlock.
    let run = run_in(
        &scene.worktree(),
        "mkdir -p /run/escape && echo made",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        !run.stdout.contains("made"),
        "wrote outside the Landlock rules: {}",
        run.stdout
    );
}

/// A one-page HTTP server on a Unix socket of the host.
fn host_socket_server(path: &Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nfrom-gateway",
            );
        }
    });
}

#[tokio::test]
async fn the_gateway_is_reachable_and_nothing_else_is() {
    let scene = Scene::new();
    let port = host_http_server();
    let socket = scene.outside("gateway.sock");
    host_socket_server(&socket);
    let home = scene.outside("agent-home");
    std::fs::create_dir(&home).unwrap();
    let line = format!(
        "curl -s --max-time 5 \"$PUSHPALS_GATEWAY/v1/models\"; echo; \
         curl -s --max-time 3 http://127.0.0.1:{port}/ && echo host-reached; \
         echo kept > \"$HOME/.agent-config\" && echo home-written; true"
    );
    let run = run_spec(&scene.worktree(), &line, Duration::from_secs(30), |spec| {
        spec.gateway = Some(socket.clone());
        spec.home = Some(home.clone());
    })
    .await;
    assert!(
        run.stdout.contains("from-gateway"),
        "gateway not reached: {} {}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stdout.contains("host-reached"), "{}", run.stdout);
    assert!(run.stdout.contains("home-written"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(home.join(".agent-config")).unwrap(),
        "kept\n",
        "the private home is the directory given"
    );
}

#[tokio::test]
async fn without_a_gateway_the_gateway_address_is_closed() {
    let scene = Scene::new();
    let run = run(
        &scene,
        "curl -s --max-time 3 http://127.0.0.1:4141/ && echo reached; echo \"[${PUSHPALS_GATEWAY:-none}]\"",
    )
    .await;
    assert!(!run.stdout.contains("reached"), "{}", run.stdout);
    assert!(run.stdout.contains("[none]"), "{}", run.stdout);
}

#[tokio::test]
async fn the_hook_mode_asks_the_gateway_and_blocks_when_it_cannot() {
    let scene = Scene::new();
    let socket = scene.outside("judge.sock");
    host_socket_server(&socket);
    let hook = runner().hook_command().unwrap();
    let line = format!(
        "echo '{{\"tool_name\":\"Bash\"}}' | PUSHPALS_GATEWAY_TOKEN=t {hook} /judge; echo \"exit=$?\""
    );
    let run = run_spec(&scene.worktree(), &line, Duration::from_secs(30), |spec| {
        spec.gateway = Some(socket.clone());
    })
    .await;
    assert!(
        run.stdout.contains("from-gateway\nexit=0"),
        "{} {}",
        run.stdout,
        run.stderr
    );
    // No gateway: the tool call is blocked (exit 2) with the reason.
    let run = run_in(&scene.worktree(), &line, Duration::from_secs(30)).await;
    assert!(run.stdout.contains("exit=2"), "{}", run.stdout);
    assert!(run.stderr.contains("so it is blocked"), "{}", run.stderr);
}

#[tokio::test]
async fn a_session_socket_is_the_commands_standard_input_and_output() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let scene = Scene::new();
    let socket = scene.outside("session.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let talk = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = stream.into_split();
        writer.write_all(b"hello\n").await.unwrap();
        let mut lines = BufReader::new(reader).lines();
        lines.next_line().await.unwrap()
    });
    let run = run_spec(
        &scene.worktree(),
        "read line; echo \"got:$line\"; echo to-stderr >&2",
        Duration::from_secs(30),
        |spec| spec.session = Some(socket.clone()),
    )
    .await;
    assert_eq!(talk.await.unwrap().as_deref(), Some("got:hello"));
    assert!(
        run.stdout.is_empty(),
        "stdout went to the session: {}",
        run.stdout
    );
    assert!(run.stderr.contains("to-stderr"), "stderr is still streamed");
}

#[tokio::test]
async fn a_session_reaches_a_program_that_buffers_and_watches_its_streams_apart() {
    // Python's asyncio watches standard input and output separately; one
    // socket as both once left such an agent deaf. Its two ends are pipes.
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let scene = Scene::new();
    let socket = scene.outside("session.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let talk = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let mut heard = Vec::new();
        for word in ["one", "two"] {
            writer
                .write_all(format!("{word}\n").as_bytes())
                .await
                .unwrap();
            heard.push(lines.next_line().await.unwrap().unwrap_or_default());
        }
        heard
    });
    let program = r#"python3 -c '
import os, stat, sys
kinds = [stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (0, 1)]
for _ in range(2):
    print("got", sys.stdin.readline().strip(), "pipes" if all(kinds) else "not pipes", flush=True)
'"#;
    let run = run_spec(
        &scene.worktree(),
        program,
        Duration::from_secs(30),
        |spec| spec.session = Some(socket.clone()),
    )
    .await;
    // A run that never reached the socket must fail the test, not hang it.
    let heard = tokio::time::timeout(Duration::from_secs(10), talk).await;
    let Ok(heard) = heard else {
        panic!(
            "the program never talked over the session ({:?}): {}",
            run.outcome, run.stderr
        );
    };
    assert_eq!(
        heard.unwrap(),
        ["got one pipes", "got two pipes"],
        "{}",
        run.stderr
    );
}
