//! An orchestrator and three worker hosts on this machine. Each worker runs
//! in a network namespace of its own with only loopback inside; its one way
//! out is a relay this test runs (the namespace's 127.0.0.1 port, a Unix
//! socket, the server's 127.0.0.1 port). Twelve tasks in three repositories
//! go to the workers their labels allow (one repository's at most one at a
//! time, as its limit says); a worker killed mid-task loses its
//! run to another; a worker cut off for 20 s loses nothing and sends
//! nothing twice; a command granted network on a worker reaches the
//! allowlisted host through the server's proxy only; a worker's token
//! reaches nothing but its own runs; the server's model key and push token
//! never reach a worker.
//!
//! Over 400 lines: the relays and namespaces are only worth their set-up
//! when every fault is tried on the same fleet.

use super::support::{BIN, Server, start_server_with_env, write_config};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Copies both ways between two streams until either side ends.
fn pipe(
    a: impl Read + Write + Send + 'static + Clone2,
    b: impl Read + Write + Send + 'static + Clone2,
) {
    let (mut a_read, mut b_write) = (a.clone2(), b.clone2());
    let (mut b_read, mut a_write) = (b, a);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        b_write.close();
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut b_read, &mut a_write);
        a_write.close();
    });
}

/// A stream that can be cloned and shut down.
trait Clone2: Sized {
    fn clone2(&self) -> Self;
    fn close(&self);
}

impl Clone2 for TcpStream {
    fn clone2(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Clone2 for UnixStream {
    fn clone2(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// The outer half of a worker's way out: a Unix socket to the server's
/// port, which the test can cut (every open connection closed, new ones
/// refused) and restore.
struct Relay {
    open: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(socket: &Path, server: std::net::SocketAddr) -> Self {
        let listener = UnixListener::bind(socket).unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let live = Arc::new(Mutex::new(Vec::new()));
        let (is_open, conns) = (Arc::clone(&open), Arc::clone(&live));
        std::thread::spawn(move || {
            for inner in listener.incoming().flatten() {
                if !is_open.load(Ordering::SeqCst) {
                    inner.close();
                    continue;
                }
                let Ok(outer) = TcpStream::connect(server) else {
                    inner.close();
                    continue;
                };
                conns.lock().unwrap().push(outer.try_clone().unwrap());
                pipe(inner, outer);
            }
        });
        Self { open, live }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            stream.close();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// A worker host in a network namespace of its own.
struct Host {
    name: String,
    home: tempfile::TempDir,
    child: Child,
    relay: Relay,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enrols worker `name` with `labels` and starts it in a new network
/// namespace whose loopback port relays to the server through `dir`.
fn start_host(server: &Server, dir: &Path, name: &str, labels: &str) -> Host {
    let created = server.json(&["worker", "token", "--name", name, "--labels", labels]);
    let enrolment = created["enrolment_token"].as_str().unwrap().to_owned();
    let server_addr: std::net::SocketAddr =
        server.url.trim_start_matches("http://").parse().unwrap();
    let socket = dir.join(format!("{name}.sock"));
    let relay = Relay::start(&socket, server_addr);
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_path_buf();
    let worker_name = name.to_owned();
    // The namespace is the thread's: what it binds and starts stays in it.
    let child = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace");
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success(), "loopback did not come up");
        // Inside, the server's own port is not there.
        assert!(
            TcpStream::connect_timeout(&server_addr, Duration::from_secs(1)).is_err(),
            "the namespace reaches the server without the relay"
        );
        let inner = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = inner.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in inner.incoming().flatten() {
                match UnixStream::connect(&socket) {
                    Ok(out) => pipe(stream, out),
                    Err(_) => stream.close(),
                }
            }
        });
        Command::new(BIN)
            .args(["worker", "--server", &format!("http://127.0.0.1:{port}")])
            .args(["--token", &enrolment])
            .env("PUSHPALS_DATA_DIR", &home_path)
            .env("XDG_CONFIG_HOME", home_path.join("config"))
            .env("PUSHPALS_WORKER_REPORT_SECS", "1")
            .env_remove("PUSHPALS_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home_path.join("worker.log")).unwrap())
            .spawn()
            .unwrap()
    })
    .join()
    .unwrap_or_else(|_| panic!("worker {worker_name} did not start"));
    Host {
        name: name.to_owned(),
        home,
        child,
        relay,
    }
}

/// A repository whose `pushpals.toml` needs `needs` and whose test check
/// wants `OUT.md`.
fn repository(needs: &str) -> pushpals_test_support::TempRepo {
    let repo = pushpals_test_support::TempRepo::new();
    repo.write(
        "pushpals.toml",
        &format!("[checks]\nneeds = [{needs}]\ntest = \"test -f OUT.md\"\n"),
    );
    repo.commit_all("checks");
    repo
}

/// The worker a task's latest run was placed on.
fn placed_on(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "task_placed")
        .filter_map(|e| e["payload"]["worker"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until `ready` holds for the task's events.
fn events_until(server: &Server, task: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = server.events(task);
        if ready(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "never got there: {events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && std::fs::read(&path)
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The process `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() {
        let parent = all[at];
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        all.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        at += 1;
    }
    all
}

/// A worker token's answer to `method path`.
fn status_with(server: &Server, token: &str, method: &str, path: &str) -> u16 {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .arg(format!("{}/api/v1{path}", server.url))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).parse().unwrap()
}

#[test]
fn three_workers_in_their_own_networks_take_tasks_by_label_and_survive_a_kill_and_a_cut() {
    let cargo = repository("\"cargo\"");
    let node = repository("\"node\"");
    let any = repository("");
    let data = tempfile::tempdir().unwrap();
    let model_key = format!("model-key-{}", std::process::id());
    let push_token = format!("push-token-{}", std::process::id());
    write_config(
        data.path(),
        "max_parallel = 3\n\
         [workers]\nlocal = false\nsilence_secs = 25\n\
         [repos.docs]\nmax_parallel = 1\n\
         [network]\nallow = [\"localhost\"]\n\
         [delivery]\ntoken_env = \"FLEET_PUSH_TOKEN\"\n\
         [models.fast]\nprotocol = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         model = \"m\"\napi_key_env = \"FLEET_MODEL_KEY\"\n",
    );
    let server = start_server_with_env(
        &cargo.path,
        data.path(),
        &[
            ("FLEET_MODEL_KEY", model_key.as_str()),
            ("FLEET_PUSH_TOKEN", push_token.as_str()),
        ],
    );
    let cargo_name = server.repo_names()[0].clone();
    for (repo, name) in [(&node, "web"), (&any, "docs")] {
        server
            .cli()
            .args(["repo", "add", repo.path.to_str().unwrap(), "--name", name])
            .assert()
            .success();
    }
    let sockets = tempfile::tempdir().unwrap();
    let mut hosts = vec![
        start_host(&server, sockets.path(), "w-cargo", "cargo"),
        start_host(&server, sockets.path(), "w-node", "node"),
        start_host(&server, sockets.path(), "w-both", "cargo,node"),
    ];
    let allowed = |repo: &str| -> Vec<&str> {
        match repo {
            "web" => vec!["w-node", "w-both"],
            "docs" => vec!["w-cargo", "w-node", "w-both"],
            _ => vec!["w-cargo", "w-both"],
        }
    };

    // Twelve tasks, four per repository, all at once; docs' first, so
    // without its limit they would take every free slot.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let repo = ["docs", cargo_name.as_str(), "web"][i / 4].to_owned();
        let created = server.json(&[
            "task",
            &format!("task {i}"),
            "--repo",
            &repo,
            "--run",
            &format!("echo said-{i}; echo {i} > OUT.md"),
        ]);
        tasks.push((created["id"].as_str().unwrap().to_owned(), repo, i));
    }
    let mut used = std::collections::BTreeSet::new();
    let mut docs_runs = Vec::new();
    for (id, repo, i) in &tasks {
        let view = server.wait_for_state(id, "awaiting_approval");
        let events = server.events(id);
        let workers = placed_on(&events);
        assert_eq!(workers.len(), 1, "{id}: {workers:?}");
        assert!(
            allowed(repo).contains(&workers[0].as_str()),
            "task {i} of {repo} ran on {}",
            workers[0]
        );
        used.insert(workers[0].clone());
        if repo == "docs" {
            let (start, end) = super::support::worker_interval(&events);
            let at = |t: &str| pushpals_core::timestamp::parse(t).unwrap();
            docs_runs.push((at(&start), at(&end)));
        }
        // Its output came back, the check ran there, the diff is here.
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "output" && e["payload"]["text"] == format!("said-{i}\n")),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "check_result" && e["payload"]["passed"] == true)
        );
        let worktree = view["task"]["worktree_path"].as_str().unwrap();
        assert_eq!(
            std::fs::read_to_string(Path::new(worktree).join("OUT.md")).unwrap(),
            format!("{i}\n")
        );
    }
    assert!(used.len() >= 2, "the work went to {used:?} only");
    // `[repos.docs] max_parallel = 1`: its runs never overlapped, on
    // whichever workers they went.
    docs_runs.sort();
    for pair in docs_runs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "docs ran two at once: {pair:?}");
    }
    let listed = server.json(&["workers"]);
    let runs: u64 = listed["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["runs"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(runs, 12, "{listed}");

    // A worker's token reaches its own runs and nothing else.
    let token = std::fs::read_to_string(hosts[0].home.path().join("worker/token")).unwrap();
    let token = token.trim();
    let (other_task, _, _) = &tasks[1];
    assert_eq!(status_with(&server, token, "GET", "/tasks"), 403);
    assert_eq!(
        status_with(
            &server,
            token,
            "POST",
            &format!("/tasks/{other_task}/approve")
        ),
        403
    );
    assert_eq!(status_with(&server, token, "GET", "/workers"), 403);
    let stolen = status_with(
        &server,
        token,
        "GET",
        &format!("/workers/tasks/{other_task}/base?lease=1"),
    );
    assert!([404, 409].contains(&stolen), "{stolen}");

    // A worker killed mid-task: the run is lost, offered again, finished
    // by another.
    let slow = server.json(&[
        "task",
        "slow",
        "--repo",
        "docs",
        "--run",
        "echo started; sleep 30; echo slow > OUT.md",
    ]);
    let slow = slow["id"].as_str().unwrap().to_owned();
    let events = events_until(&server, &slow, |events| {
        events
            .iter()
            .any(|e| e["kind"] == "output" && e["payload"]["text"] == "started\n")
    });
    let victim = placed_on(&events)[0].clone();
    let at = hosts.iter().position(|h| h.name == victim).unwrap();
    let mut killed = hosts.remove(at);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(killed.child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = killed.child.wait();
    server.wait_for_state_within(&slow, "awaiting_approval", Duration::from_secs(150));
    let events = server.events(&slow);
    let lost: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "worker_lost")
        .collect();
    assert_eq!(lost.len(), 1, "{events:?}");
    assert_eq!(lost[0]["payload"]["worker"], victim.as_str());
    let placed = placed_on(&events);
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert_ne!(placed[1], victim);

    // A worker cut off for 20 s: nothing lost, nothing twice.
    let cut = server.json(&[
        "task",
        "cut",
        "--repo",
        "docs",
        "--run",
        "echo before; sleep 5; echo after; echo cut > OUT.md",
    ]);
    let cut = cut["id"].as_str().unwrap().to_owned();
    let events = events_until(&server, &cut, |events| {
        events
            .iter()
            .any(|e| e["kind"] == "output" && e["payload"]["text"] == "before\n")
    });
    let on = placed_on(&events)[0].clone();
    let host = hosts.iter().find(|h| h.name == on).unwrap();
    host.relay.cut();
    std::thread::sleep(Duration::from_secs(20));
    host.relay.restore();
    server.wait_for_state(&cut, "awaiting_approval");
    let events = server.events(&cut);
    let said = |text: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == "output" && e["payload"]["text"] == text)
            .count()
    };
    assert_eq!((said("before\n"), said("after\n")), (1, 1), "{events:?}");
    let ends = events
        .iter()
        .filter(|e| e["kind"] == "command_finished" && e["payload"]["step"] == "worker")
        .count();
    assert_eq!(ends, 1, "{events:?}");
    assert!(
        !events.iter().any(|e| e["kind"] == "worker_lost"),
        "{events:?}"
    );
    assert_eq!(placed_on(&events).len(), 1);

    // Granted network, a command on a worker reaches the allowlisted host
    // through the server's proxy (the worker's own network has no way
    // there), and nothing else; both are recorded.
    let page = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = page.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in page.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello-from-host",
            );
        }
    });
    let fetch = server.json(&[
        "task",
        "fetch",
        "--repo",
        "docs",
        "--run",
        &format!(
            "curl -s http://localhost:{port}/ > OUT.md; curl -s http://127.0.0.1:{port}/ > refused.txt; true"
        ),
    ]);
    let fetch = fetch["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&fetch, "waiting");
    server.cli().args(["approve", &fetch]).assert().success();
    let view = server.wait_for_state(&fetch, "awaiting_approval");
    let worktree = Path::new(view["task"]["worktree_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(worktree.join("OUT.md")).unwrap(),
        "hello-from-host"
    );
    let refused = std::fs::read_to_string(worktree.join("refused.txt")).unwrap();
    assert!(
        !refused.contains("hello") && refused.contains("not on the network allowlist"),
        "{refused}"
    );
    let events = server.events(&fetch);
    assert!(!placed_on(&events).is_empty(), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "network_allowed" && e["payload"]["host"] == "localhost")
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "network_refused" && e["payload"]["host"] == "127.0.0.1")
    );

    // The server's model key and push token never reached a worker: not on
    // its disk, not in its processes' environments.
    for host in hosts.iter().chain([&killed]) {
        for secret in [&model_key, &push_token] {
            assert!(
                files_holding(host.home.path(), secret).is_empty(),
                "{} holds {secret}",
                host.name
            );
        }
    }
    for host in &hosts {
        for pid in process_tree(host.child.id()) {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let text = String::from_utf8_lossy(&environ);
            assert!(
                !text.contains(&model_key) && !text.contains(&push_token),
                "process {pid} of {} has a secret",
                host.name
            );
        }
    }
    // The audit log holds together.
    let verified = server.json(&["audit", "verify"]);
    assert_eq!(verified["ok"], true, "{verified}");
}
