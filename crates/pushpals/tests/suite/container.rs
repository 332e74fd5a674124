//! The container backend, chosen in config.toml, seen from the command line.

use super::support::*;
use pushpals_test_support::{TempRepo, busybox_image};

#[test]
fn a_task_runs_in_a_podman_container_when_configured() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[sandbox]\nbackend = \"podman\"\nimage = \"{}\"\ncontainer_runtime = \"runc\"\nmemory_mib = 256\n",
            busybox_image()
        ),
    );
    let server = start_server(&repo.path, data.path());
    let task = server.json(&[
        "task",
        "Write",
        "--run",
        "echo made-in-a-container > out.txt",
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "awaiting_approval");
    let diff = server.json(&["diff", &id]);
    assert!(
        diff["diff"]
            .as_str()
            .unwrap()
            .contains("+made-in-a-container")
    );
    let started = server
        .events(&id)
        .into_iter()
        .find(|e| e["kind"] == "command_started")
        .unwrap();
    assert_eq!(started["payload"]["backend"], "podman");
}

#[test]
fn a_container_backend_without_an_image_or_with_a_missing_one_refuses_to_start() {
    let repo = TempRepo::new();
    for (config, expected) in [
        ("[sandbox]\nbackend = \"podman\"\n", "needs image"),
        (
            "[sandbox]\nbackend = \"podman\"\nimage = \"localhost/pushpals-absent:0\"\n",
            "pull or build it first",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        write_config(data.path(), config);
        let mut command = std::process::Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path);
        isolated(&mut command, data.path());
        let output = command.output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}
