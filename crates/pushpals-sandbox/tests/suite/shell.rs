//! Lines run with bash, the shell whose grammar policy judges them in, on
//! every backend: the same corpus, where dash and bash read a line
//! differently, gives bash's output on the host, under bubblewrap and in a
//! container.

use pushpals_sandbox::{CommandSpec, HostRunner, OutputStream, Runner};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Lines whose output differs between dash (Debian's `/bin/sh`) and bash.
const CORPUS: &[&str] = &[
    "echo {a,b}",
    "echo $'x\\x41'",
    "[[ a == a ]] && echo yes",
    "x=(1 2 3); echo ${x[2]}",
    "cat <<< here",
    "echo ${BASH_VERSION:+bash}",
    "f() { local -a v=(q r); echo ${v[1]}; }; f",
];

fn spec(dir: &Path, line: &str) -> CommandSpec {
    CommandSpec {
        command_line: line.to_owned(),
        cwd: dir.to_path_buf(),
        timeout: Duration::from_secs(30),
        env: Vec::new(),
        read_only_paths: Vec::new(),
        network_proxy: None,
        gateway: None,
        home: None,
        session: None,
        alias: None,
    }
}

pub(crate) async fn stdout_of(runner: &dyn Runner, dir: &Path, line: &str) -> String {
    let (tx, mut rx) = mpsc::channel::<pushpals_sandbox::OutputChunk>(64);
    let (_cancel_tx, cancel) = watch::channel(false);
    let collector = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            if chunk.stream == OutputStream::Stdout {
                out.extend(chunk.bytes);
            }
        }
        out
    });
    runner.run(spec(dir, line), tx, cancel).await.unwrap();
    String::from_utf8(collector.await.unwrap()).unwrap()
}

fn directly(shell: &str, line: &str) -> String {
    let output = std::process::Command::new(shell)
        .args(["-c", line])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_corpus_tells_dash_from_bash() {
    if !Path::new("/bin/dash").exists() {
        return;
    }
    for line in CORPUS {
        assert_ne!(
            directly("/bin/dash", line),
            directly("/bin/bash", line),
            "{line}"
        );
    }
}

#[tokio::test]
async fn every_backend_runs_lines_with_bash() {
    let dir = tempfile::tempdir().unwrap();
    // The same runners the escape suites attack.
    let bwrap = super::escapes::runner();
    let container = super::container_escapes::runner();
    let runners: [(&str, &dyn Runner); 3] = [
        ("host", &HostRunner),
        ("bubblewrap", &bwrap),
        ("container", &container),
    ];
    for line in CORPUS {
        let expected = directly("/bin/bash", line);
        assert!(!expected.trim().is_empty(), "{line}");
        for (name, runner) in runners {
            let got = stdout_of(runner, dir.path(), line).await;
            assert_eq!(
                got, expected,
                "{name} ran {line:?} as something other than bash"
            );
        }
    }
}
