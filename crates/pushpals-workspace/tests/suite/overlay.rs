//! Task worktrees as overlays over a shared pristine tree: they diff and
//! commit as checkouts do, share nothing writable, survive an unmount (a
//! reboot) and a prune, and leave nothing mounted when removed. Where this
//! machine cannot mount overlays the probe says why and the test stops.

use pushpals_test_support::TempRepo;
use pushpals_workspace::{Identity, Overlays, Repo};
use std::path::Path;

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let wanted = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*wanted))
}

#[tokio::test]
async fn overlay_worktrees_diff_commit_survive_an_unmount_and_leave_nothing_behind() {
    let fixture = TempRepo::new();
    fixture.write("src/lib.rs", "pub fn foo() {}\n");
    fixture.write("README.md", "readme\n");
    fixture.commit_all("base");
    let data = tempfile::tempdir().unwrap();
    let cut_short = data.path().join("pristine/.building-abc-1-0");
    std::fs::create_dir_all(&cut_short).unwrap();
    let overlays = match Overlays::probe(data.path()) {
        Ok(overlays) => overlays,
        Err(reason) => {
            eprintln!("no overlays on this machine: {reason}");
            return;
        }
    };
    let repo = Repo::open(&fixture.path)
        .await
        .unwrap()
        .with_overlays(overlays.clone());
    assert_eq!(repo.task_start(), "overlay");
    assert!(!cut_short.exists(), "an export cut short was kept");
    let base = repo.head_commit().await.unwrap();
    let one = data.path().join("worktrees/t1");
    let two = data.path().join("worktrees/t2");
    let first = repo.add_worktree(&one, "pushpals/t1", &base).await.unwrap();
    let second = repo.add_worktree(&two, "pushpals/t2", &base).await.unwrap();
    assert!(mounted(&one) && mounted(&two));
    assert!(
        first.diff().await.unwrap().is_empty(),
        "a fresh overlay shows no change"
    );

    // Writes stay in the task's own layer.
    std::fs::write(one.join("src/lib.rs"), "pub fn bar() {}\n").unwrap();
    std::fs::remove_file(one.join("README.md")).unwrap();
    assert_eq!(
        std::fs::read_to_string(two.join("src/lib.rs")).unwrap(),
        "pub fn foo() {}\n"
    );
    assert!(two.join("README.md").exists());
    let diff = first.diff().await.unwrap();
    assert_eq!(diff.files.len(), 2, "{}", diff.text);
    let identity = Identity {
        name: "Push Pals".into(),
        email: "pushpals@example.com".into(),
    };
    let sha = first.commit("Rename foo", &identity).await.unwrap();
    assert_eq!(
        fixture
            .git(&["show", "--stat", "--format=", &sha])
            .lines()
            .count(),
        3,
        "two files and the summary"
    );
    assert!(second.diff().await.unwrap().is_empty());

    // A reboot unmounts everything; a prune meanwhile keeps the entry; the
    // start mounts it again with the task's changes.
    std::process::Command::new("umount")
        .arg(&one)
        .status()
        .unwrap();
    assert!(!mounted(&one));
    fixture.git(&["worktree", "prune"]);
    assert!(repo.remount_worktree(&one).unwrap());
    assert!(!repo.remount_worktree(&one).unwrap(), "already mounted");
    assert_eq!(
        std::fs::read_to_string(one.join("src/lib.rs")).unwrap(),
        "pub fn bar() {}\n"
    );
    assert!(
        first.uncommitted().await.unwrap().is_empty(),
        "the commit holds the change"
    );
    assert_eq!(first.diff().await.unwrap(), diff);

    // Removing takes the overlay apart.
    repo.remove_worktree_only(&one).await.unwrap();
    repo.remove_worktree(&two, "pushpals/t2").await.unwrap();
    assert!(!mounted(&one) && !mounted(&two));
    assert!(!one.exists() && !two.exists());
    assert!(!fixture.git(&["worktree", "list"]).contains("t1"));
    // The pristine tree goes once no layer sits on it.
    assert_eq!(overlays.remove_unused_pristine(&[]).len(), 1);
}
