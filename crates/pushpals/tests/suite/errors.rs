//! What the command line says when something is wrong.

use assert_cmd::Command;
use pushpals_test_support::TempRepo;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pushpals");

fn pushpals(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("PUSHPALS_DATA_DIR", data_dir)
        .env("XDG_CONFIG_HOME", data_dir.join("config-home"))
        .env_remove("PUSHPALS_TOKEN")
        .env_remove("PUSHPALS_URL")
        .timeout(Duration::from_secs(30));
    command
}

fn stderr_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success(), "expected a failure");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn serving_something_that_is_not_a_repository_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    let message = stderr_of(
        pushpals(data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(plain.path()),
    );
    assert!(message.contains("is not a git repository"), "{message}");
}

#[test]
fn serving_a_path_that_does_not_exist_says_so_and_leaves_no_data_dir() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let message = stderr_of(
        pushpals(&data)
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(parent.path().join("no-such-checkout")),
    );
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains("git init"), "{message}");
    assert!(!data.exists());
}

#[test]
fn a_port_in_use_leaves_no_new_data_dir_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let repo = TempRepo::new();
    let message = stderr_of(
        pushpals(&data)
            .env("XDG_CONFIG_HOME", parent.path())
            .args(["serve", "--addr", &address, "--repo"])
            .arg(&repo.path),
    );
    assert!(message.contains("already in use"), "{message}");
    assert!(!data.exists(), "a failed start made {}", data.display());
}

#[test]
fn serving_a_repository_without_commits_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let empty = TempRepo::empty();
    let message = stderr_of(
        pushpals(data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&empty.path),
    );
    assert!(message.contains("no commits yet"), "{message}");
}

#[test]
fn a_data_dir_that_cannot_be_written_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("file");
    std::fs::write(&file, "").unwrap();
    let repo = TempRepo::new();
    let message = stderr_of(
        pushpals(&file.join("sub"))
            .env("XDG_CONFIG_HOME", data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path),
    );
    assert!(message.contains("cannot be used"), "{message}");
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let repo = TempRepo::new();
    let mut first = std::process::Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(&repo.path)
        .env("PUSHPALS_DATA_DIR", data.path())
        .env("XDG_CONFIG_HOME", data.path().join("config-home"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first server holds its lock and wrote its token.
    for _ in 0..200 {
        if data.path().join("admin.token").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let message = stderr_of(
        pushpals(data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path),
    );
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        message.contains("another Push Pals server is already using"),
        "{message}"
    );
}

#[test]
fn a_bad_config_file_names_the_key() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.toml");
    std::fs::write(&config, "max_paralel = 4\n").unwrap();
    let repo = TempRepo::new();
    let message = stderr_of(
        pushpals(data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--repo")
            .arg(&repo.path),
    );
    assert!(message.contains("max_paralel"), "{message}");
}

#[test]
fn the_client_says_what_to_do_without_a_token_or_a_server() {
    let data = tempfile::tempdir().unwrap();
    let message = stderr_of(pushpals(data.path()).arg("status"));
    assert!(message.contains("no API token"), "{message}");

    std::fs::write(data.path().join("admin.token"), "pp_x\n").unwrap();
    let message =
        stderr_of(pushpals(data.path()).args(["--server", "http://127.0.0.1:9", "status"]));
    assert!(
        message.contains("is `pushpals serve` running?"),
        "{message}"
    );
}

#[test]
fn a_task_without_a_title_is_refused_before_any_request() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("admin.token"), "pp_x\n").unwrap();
    let message = stderr_of(pushpals(data.path()).args([
        "--server",
        "http://127.0.0.1:9",
        "task",
        "--run",
        "true",
    ]));
    assert!(message.contains("say what the task is"), "{message}");
}

#[test]
fn a_metrics_address_already_in_use_is_refused_with_its_setting_named() {
    let data = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    super::support::write_config(
        data.path(),
        &format!(
            "[server]\nmetrics_addr = \"{}\"\n",
            taken.local_addr().unwrap()
        ),
    );
    let repo = TempRepo::new();
    let message = stderr_of(
        pushpals(data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path),
    );
    assert!(
        message.contains("cannot listen on [server] metrics_addr"),
        "{message}"
    );
}

#[test]
fn a_token_in_a_clone_url_shows_nowhere_even_when_the_clone_fails() {
    let (_repo, data, server) = super::support::served();
    let token = "tok-LEAKCHECK-77aa31";
    let url = format!("http://me:{token}@127.0.0.1:1/app.git");
    let stderr = stderr_of(server.cli().args(["repo", "add", &url]));
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    assert!(stderr.contains("http://127.0.0.1:1/app.git"), "{stderr}");
    assert!(!stderr.contains(token), "{stderr}");
    // A bad name and an option-looking URL are refused before any clone.
    let stderr = stderr_of(server.cli().args(["repo", "add", &url, "--name", "../x"]));
    assert!(stderr.contains("cannot name a repository"), "{stderr}");
    assert!(!stderr.contains(token), "{stderr}");
    let stderr = stderr_of(
        server
            .cli()
            .args(["repo", "add", "--", "--upload-pack=touch /tmp/x"]),
    );
    assert!(stderr.contains("option"), "{stderr}");
    // Not in the server's log, nor anywhere in the data directory.
    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains(token), "{log}");
    fn search(dir: &Path, token: &str) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                search(&path, token);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "the token is in {}",
                    path.display()
                );
            }
        }
    }
    search(data.path(), token);
    let listed = server.json(&["repo", "list"]);
    assert_eq!(listed["repos"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn an_unknown_log_format_is_named_with_the_ones_there_are() {
    let data = tempfile::tempdir().unwrap();
    let stderr = stderr_of(
        pushpals(data.path())
            .env("PUSHPALS_LOG_FORMAT", "yaml")
            .arg("status"),
    );
    assert!(stderr.contains("PUSHPALS_LOG_FORMAT=\"yaml\""), "{stderr}");
    assert!(stderr.contains("\"json\""), "{stderr}");
    // The same mistake in config.toml names the key.
    let config = data.path().join("config-home/pushpals");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[telemetry]\nlog_format = \"yaml\"\n",
    )
    .unwrap();
    let repo = TempRepo::new();
    let stderr = stderr_of(
        pushpals(data.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path),
    );
    assert!(stderr.contains("log_format = \"yaml\""), "{stderr}");
}
