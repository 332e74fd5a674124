//! Sandbox start overhead: `true` under each backend against a bare
//! fork+exec of `true`, measured side by side. Run with
//! `cargo bench -p pushpals-sandbox --bench sandbox_start`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_sandbox::{BwrapConfig, BwrapRunner, CommandSpec, HostRunner, Runner};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const RUNS: usize = 200;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bare_true() -> Duration {
    let samples = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let status = std::process::Command::new("/bin/true").status().unwrap();
            assert!(status.success());
            started.elapsed()
        })
        .collect();
    median(samples)
}

fn bare_bwrap_true() -> Duration {
    let samples = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let status = std::process::Command::new("bwrap")
                .args([
                    "--ro-bind",
                    "/",
                    "/",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                    "--unshare-all",
                    "--die-with-parent",
                    "/bin/true",
                ])
                .status()
                .unwrap();
            assert!(status.success());
            started.elapsed()
        })
        .collect();
    median(samples)
}

async fn runner_true(runner: &dyn Runner, dir: &std::path::Path) -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (tx, _rx) = mpsc::channel(4);
        let (_cancel_tx, cancel) = watch::channel(false);
        let spec = CommandSpec {
            command_line: "true".into(),
            cwd: dir.to_path_buf(),
            timeout: Duration::from_secs(10),
            env: Vec::new(),
            read_only_paths: Vec::new(),
            network_proxy: None,
            gateway: None,
            home: None,
            session: None,
            alias: None,
        };
        let started = Instant::now();
        let outcome = runner.run(spec, tx, cancel).await.unwrap();
        samples.push(started.elapsed());
        assert!(outcome.succeeded());
    }
    median(samples)
}

fn line(name: &str, ours: Duration, floor: Duration, floor_name: &str) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<36} ours {:>7.2} ms   floor {:>6.2} ms ({floor_name})   overhead {:>6.2} ms   ratio {:.1}",
        ms(ours),
        ms(floor),
        ms(ours) - ms(floor),
        ms(ours) / ms(floor)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_true();
    let bwrap_floor = bare_bwrap_true();
    let host = runtime.block_on(runner_true(&HostRunner, dir.path()));
    let sandbox = BwrapRunner::new(BwrapConfig::default()).expect("bubblewrap must be usable");
    let sandboxed = runtime.block_on(runner_true(&sandbox, dir.path()));
    let helper = std::path::PathBuf::from(env!("CARGO_BIN_EXE_pushpals-sandbox-helper"));
    let with_helper = |fresh_per_command| {
        BwrapRunner::new(BwrapConfig {
            helper: Some((helper.clone(), Vec::new())),
            fresh_per_command,
            ..BwrapConfig::default()
        })
        .expect("bubblewrap must be usable")
    };
    let landlocked = runtime.block_on(runner_true(&with_helper(true), dir.path()));
    let resident_runner = with_helper(false);
    let resident = runtime.block_on(runner_true(&resident_runner, dir.path()));
    println!(
        "median of {RUNS} runs of `true`; cgroups: {:?}",
        sandbox.cgroups()
    );
    line(
        "host runner (sh -c, process group)",
        host,
        bare,
        "bare fork+exec",
    );
    line(
        "bubblewrap runner (limits + bwrap)",
        sandboxed,
        bare,
        "bare fork+exec",
    );
    line(
        "bubblewrap runner (limits + bwrap)",
        sandboxed,
        bwrap_floor,
        "bare bwrap --unshare-all",
    );
    line(
        "... + helper (Landlock), fresh",
        landlocked,
        bare,
        "bare fork+exec",
    );
    line(
        "... + helper (Landlock), fresh",
        landlocked,
        bwrap_floor,
        "bare bwrap --unshare-all",
    );
    line("task's resident sandbox", resident, bare, "bare fork+exec");
    line(
        "task's resident sandbox",
        resident,
        host,
        "host runner (bash -c)",
    );
    // The goal: a command's overhead in its task's sandbox at most half
    // of what a fresh bwrap adds to a bare exec.
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ours = ms(resident) - ms(bare);
    let bwraps = ms(bwrap_floor) - ms(bare);
    println!(
        "per-command overhead: resident {ours:.2} ms   fresh bwrap's own {bwraps:.2} ms   ratio {:.2} (goal <= 0.5)",
        ours / bwraps
    );
}
