//! A full disk: the data directory on a small filesystem made by the test
//! (a 24 MiB tmpfs). Writes fail with a clear error, the server stays up
//! and reads still work; when space returns, writes work again, and the
//! database is not corrupt.

use super::support::{start_server, write_config};
use pushpals_test_support::TempRepo;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "pushpals-test",
            ])
            .arg(dir.path())
            .status()
            .ok()?
            .success();
        mounted.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until the disk refuses.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

/// A server whose data dir is on a 24 MiB tmpfs; `None` (skipped) when
/// not root.
fn served_on_a_small_disk() -> Option<(SmallDisk, TempRepo, PathBuf, super::support::Server)> {
    if !nix_is_root() {
        eprintln!("skipped: mounting a small filesystem needs root (CI runs this as root)");
        return None;
    }
    let disk = SmallDisk::mount("24m").expect("mount a tmpfs as root");
    let repo = TempRepo::new();
    let data: PathBuf = disk.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_config(&data, "[server]\nready_min_free_mib = 1\n");
    let server = start_server(&repo.path, &data);
    Some((disk, repo, data, server))
}

#[test]
fn a_full_disk_refuses_writes_clearly_keeps_serving_reads_and_recovers() {
    let Some((disk, _repo, data, server)) = served_on_a_small_disk() else {
        return;
    };
    server.json(&["task", "Before", "--run", "echo before", "--approve-run"]);

    let filler = disk.path().join("filler");
    fill(&filler);
    let mut refusal = None;
    for n in 0..300 {
        let output = server
            .cli()
            .args([
                "task",
                &format!("While full {n}"),
                "--run",
                "echo full",
                "--approve-run",
            ])
            .output()
            .unwrap();
        if !output.status.success() {
            refusal = Some(String::from_utf8(output.stderr).unwrap());
            break;
        }
    }
    let refusal = refusal.expect("a write on a full disk fails");
    assert!(
        refusal.contains("the disk holding the database is full"),
        "{refusal}"
    );
    assert!(refusal.contains("free space"), "says what to do: {refusal}");

    // Reads still work, and readiness names the disk.
    let status = server.json(&["status"]);
    assert!(!status["tasks"].as_array().unwrap().is_empty());
    let ready = Command::new("curl")
        .args(["-s", &format!("{}/readyz", server.url)])
        .output()
        .unwrap();
    let ready = String::from_utf8(ready.stdout).unwrap();
    assert!(
        ready.contains("\"ready\":false") && ready.contains("MiB minimum"),
        "{ready}"
    );

    // Space returns: writes work again and the chain holds.
    std::fs::remove_file(&filler).unwrap();
    server.json(&["task", "After", "--run", "echo after", "--approve-run"]);
    let verify = server.json(&["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    drop(server);

    let db = rusqlite::Connection::open(data.join("pushpals.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_task_running_when_the_disk_fills_is_settled_once_space_returns() {
    let Some((disk, _repo, _data, server)) = served_on_a_small_disk() else {
        return;
    };
    let task = server.json(&[
        "task",
        "Talks while the disk fills",
        "--run",
        "sleep 2; for i in $(seq 1 200); do seq 1 2000; done",
    ]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "running");
    let filler = disk.path().join("filler");
    fill(&filler);
    // Its output cannot be recorded; the command is stopped and the task
    // cannot record its failure yet.
    std::thread::sleep(std::time::Duration::from_secs(6));
    std::fs::remove_file(&filler).unwrap();
    let mut state = String::new();
    for _ in 0..300 {
        state = server.json(&["status", &id])["task"]["state"]
            .as_str()
            .unwrap()
            .to_owned();
        if state != "running" && state != "checking" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        ["failed", "awaiting_approval", "no_changes"].contains(&state.as_str()),
        "the task was left {state}"
    );
}
