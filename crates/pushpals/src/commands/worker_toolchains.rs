//! For `doctor` on a worker host: the program behind each label the worker
//! offers (`cargo`, `node`, `python`) runs in its sandbox, and says its
//! version. A label with no known program is not checked.

use pushpals_orchestrator::Settings;
use pushpals_sandbox::{CommandSpec, Runner};
use std::path::Path;
use std::time::Duration;

/// The command that shows a label's toolchain works.
fn probe(label: &str) -> Option<&'static str> {
    match label {
        "cargo" => Some("cargo --version"),
        "node" => Some("node --version"),
        "python" => Some("python3 --version"),
        _ => None,
    }
}

/// Each label with a known toolchain, and its version or why it does not
/// run in the sandbox.
pub(crate) async fn toolchains(
    settings: &Settings,
    data_dir: &Path,
    labels: &[String],
) -> Vec<(String, Result<String, String>)> {
    let probes: Vec<(&String, &str)> = labels
        .iter()
        .filter_map(|l| probe(l).map(|p| (l, p)))
        .collect();
    if probes.is_empty() {
        return Vec::new();
    }
    let runner = match crate::serve::choose_runner(settings, data_dir) {
        Ok(runner) => runner,
        Err(error) => {
            let why = format!("the sandbox does not run: {error:#}");
            return probes
                .into_iter()
                .map(|(label, _)| (label.clone(), Err(why.clone())))
                .collect();
        }
    };
    let Ok(scratch) = tempfile_dir(data_dir) else {
        return Vec::new();
    };
    let found = probe_all(runner.as_ref(), &scratch, &probes).await;
    runner.release(&scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    found
}

/// Runs each probe in `scratch` through `runner`.
async fn probe_all(
    runner: &dyn Runner,
    scratch: &Path,
    probes: &[(&String, &str)],
) -> Vec<(String, Result<String, String>)> {
    let mut found = Vec::new();
    for &(label, line) in probes {
        let spec = CommandSpec {
            command_line: line.to_owned(),
            cwd: scratch.to_path_buf(),
            timeout: Duration::from_secs(30),
            env: Vec::new(),
            read_only_paths: Vec::new(),
            network_proxy: None,
            gateway: None,
            home: None,
            session: None,
            alias: None,
        };
        let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let run = runner.run(spec, sender, stopped);
        let read = async {
            let mut text = Vec::new();
            while let Some(chunk) = receiver.recv().await {
                text.extend(chunk.bytes);
            }
            String::from_utf8_lossy(&text).trim().to_owned()
        };
        let (ended, said) = tokio::join!(run, read);
        let first_line = said.lines().next().unwrap_or_default().to_owned();
        found.push((
            label.clone(),
            match ended {
                Ok(outcome) if outcome.succeeded() => Ok(first_line),
                Ok(outcome) => Err(format!(
                    "`{line}` {} in the sandbox: {first_line}",
                    outcome.describe()
                )),
                Err(error) => Err(format!("`{line}` cannot run in the sandbox: {error}")),
            },
        ));
    }
    found
}

/// A scratch directory for the probes under the data directory.
fn tempfile_dir(data_dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let dir = data_dir
        .join("worker")
        .join(format!("doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_toolchain_that_does_not_run_is_named_with_why() {
        let scratch = tempfile::tempdir().unwrap();
        let (shell, ghost) = ("shell".to_owned(), "ghost".to_owned());
        let found = probe_all(
            &pushpals_sandbox::HostRunner,
            scratch.path(),
            &[
                (&shell, "echo 5.2 && echo more"),
                (&ghost, "no-such-program-here --version"),
            ],
        )
        .await;
        assert_eq!(found[0], ("shell".to_owned(), Ok("5.2".to_owned())));
        let why = found[1].1.as_ref().unwrap_err();
        assert!(
            why.contains("no-such-program-here") && why.contains("127"),
            "{why}"
        );
        assert_eq!(probe("cargo"), Some("cargo --version"));
        assert_eq!(probe("gpu"), None);
    }
}
