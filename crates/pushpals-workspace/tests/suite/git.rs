//! Worktrees, diffs and commits against real git repositories.

use pushpals_test_support::TempRepo;
use pushpals_workspace::{GitError, Identity, Repo};

fn identity() -> Identity {
    Identity {
        name: "Push Pals".into(),
        email: "pushpals@example.com".into(),
    }
}

#[tokio::test]
async fn a_task_worktree_diffs_and_commits_without_touching_the_users_checkout() {
    let fixture = TempRepo::new();
    fixture.write("notes.txt", "uncommitted\n");
    fixture.write("src/lib.rs", "pub fn foo() {} // edited by the person\n");
    fixture.git(&["add", "src/lib.rs"]);
    let index_before = fixture.git(&["diff", "--cached", "--stat"]);
    let status_before = fixture.git(&["status", "--porcelain"]);

    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let worktree_path = data.path().join("worktrees/t1");
    let worktree = repo
        .add_worktree(&worktree_path, "pushpals/t1", &base)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(worktree_path.join("src/lib.rs")).unwrap(),
        "pub fn foo() {}\n",
        "the worktree starts from the commit, not the person's edits"
    );
    assert!(worktree.diff().await.unwrap().is_empty());

    std::fs::write(worktree_path.join("src/lib.rs"), "pub fn bar() {}\n").unwrap();
    std::fs::write(worktree_path.join("new.bin"), [0u8, 159, 146, 150]).unwrap();
    let diff = worktree.diff().await.unwrap();
    assert_eq!(diff.files.len(), 2);
    let lib = diff.files.iter().find(|f| f.path == "src/lib.rs").unwrap();
    assert_eq!((lib.added, lib.removed), (Some(1), Some(1)));
    let binary = diff.files.iter().find(|f| f.path == "new.bin").unwrap();
    assert_eq!(binary.added, None);
    assert!(diff.text.contains("+pub fn bar() {}"));
    // Diffing twice gives the same answer: the scratch index leaves no trace.
    assert_eq!(worktree.diff().await.unwrap(), diff);

    let sha = worktree
        .commit("Rename foo to bar\n\nBody.", &identity())
        .await
        .unwrap();
    assert_eq!(
        repo.branch_commit("pushpals/t1").await.unwrap(),
        Some(sha.clone())
    );
    let message = fixture.git(&["log", "-1", "--format=%s|%an|%B", &sha]);
    assert_eq!(
        message,
        "Rename foo to bar|Push Pals|Rename foo to bar\n\nBody."
    );
    // The committed change is still the task's diff against its base.
    assert_eq!(worktree.diff().await.unwrap().files.len(), 2);

    assert_eq!(fixture.git(&["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(fixture.git(&["rev-parse", "HEAD"]), base);
    assert_eq!(fixture.git(&["diff", "--cached", "--stat"]), index_before);
    assert_eq!(fixture.git(&["status", "--porcelain"]), status_before);
    assert_eq!(fixture.read("notes.txt"), "uncommitted\n");

    repo.remove_worktree(&worktree_path, "pushpals/t1")
        .await
        .unwrap();
    assert!(!worktree_path.exists());
    assert_eq!(repo.branch_commit("pushpals/t1").await.unwrap(), None);
}

#[tokio::test]
async fn a_rewritten_dot_git_cannot_move_a_tasks_commit_onto_another_branch() {
    let fixture = TempRepo::new();
    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("worktrees/t1");
    let worktree = repo
        .add_worktree(&path, "pushpals/t1", &base)
        .await
        .unwrap();
    let other = repo
        .add_worktree(&data.path().join("worktrees/t2"), "pushpals/t2", &base)
        .await
        .unwrap();
    // The task's sandbox may write its worktree, `.git` included: it points
    // git at the person's repository, then at another task's worktree.
    let main_git = fixture.path.join(".git");
    for target in [main_git.clone(), data.path().join("worktrees/t2/.git")] {
        let _ = std::fs::remove_file(path.join(".git"));
        std::fs::write(path.join(".git"), format!("gitdir: {}\n", target.display())).unwrap();
        std::fs::write(path.join("src/lib.rs"), "pub fn evil() {}\n").unwrap();
        let diff = worktree.diff().await.unwrap();
        assert_eq!(diff.files.len(), 1, "{}", diff.text);
    }
    let sha = worktree.commit("Task change", &identity()).await.unwrap();
    assert_eq!(repo.branch_commit("pushpals/t1").await.unwrap(), Some(sha));
    assert_eq!(
        fixture.git(&["rev-parse", "HEAD"]),
        base,
        "the person's branch moved"
    );
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
    assert_eq!(
        repo.branch_commit("pushpals/t2").await.unwrap(),
        Some(base.clone())
    );
    assert!(other.diff().await.unwrap().is_empty());

    // A directory git does not list as a worktree gets no git at all.
    let stray = data.path().join("stray");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(
        stray.join(".git"),
        format!("gitdir: {}\n", main_git.display()),
    )
    .unwrap();
    let forged = repo.worktree(&stray, &base);
    assert!(forged.diff().await.is_err());
}

#[tokio::test]
async fn paths_left_out_of_a_worktrees_changes_are_neither_shown_nor_committed() {
    let fixture = TempRepo::new();
    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("worktrees/t1");
    let worktree = repo
        .add_worktree(&path, "pushpals/t1", &base)
        .await
        .unwrap();
    // What a warm cache brought: a virtual environment the repository does
    // not ignore, and an egg-info directory beside the sources.
    std::fs::create_dir_all(path.join(".venv/bin")).unwrap();
    std::fs::write(path.join(".venv/bin/python"), "#!").unwrap();
    std::fs::create_dir_all(path.join("src/pkg.egg-info")).unwrap();
    std::fs::write(path.join("src/pkg.egg-info/PKG-INFO"), "x").unwrap();
    repo.exclude_from_changes(&path, &[".venv".into(), "src/pkg.egg-info".into()])
        .unwrap();
    std::fs::write(path.join("src/lib.rs"), "pub fn bar() {}\n").unwrap();
    // A file whose name only starts like a left-out path is a change.
    std::fs::write(path.join(".venv2"), "mine\n").unwrap();
    let diff = worktree.diff().await.unwrap();
    let mut paths: Vec<_> = diff.files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, [".venv2", "src/lib.rs"]);
    let sha = worktree.commit("Change", &identity()).await.unwrap();
    let committed = fixture.git(&["show", "--name-only", "--format=", &sha]);
    assert_eq!(committed, ".venv2\nsrc/lib.rs");
    // Only a listed worktree can have paths left out.
    assert!(
        repo.exclude_from_changes(&data.path().join("nowhere"), &[".venv".into()])
            .is_err()
    );
}

#[tokio::test]
async fn repository_config_cannot_make_our_git_calls_run_programs() {
    let fixture = TempRepo::new();
    fixture.write(".gitattributes", "*.rs filter=evil\n");
    fixture.commit_all("attributes");
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = |name: &str| marker_dir.path().join(name);
    let hooks = fixture.path.join(".git/hooks");
    for hook in ["post-checkout", "pre-commit", "commit-msg", "post-commit"] {
        let script = format!("#!/bin/sh\ntouch {}\n", marker(hook).display());
        std::fs::write(hooks.join(hook), script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(hooks.join(hook), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let touch = |name: &str| format!("touch {}; cat", marker(name).display());
    fixture.git(&[
        "config",
        "core.fsmonitor",
        &format!("touch {}; true", marker("fsmonitor").display()),
    ]);
    fixture.git(&["config", "filter.evil.clean", &touch("clean")]);
    fixture.git(&["config", "filter.evil.smudge", &touch("smudge")]);
    fixture.git(&[
        "config",
        "diff.external",
        &format!("touch {}", marker("extdiff").display()),
    ]);

    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let worktree_path = data.path().join("wt");
    let worktree = repo
        .add_worktree(&worktree_path, "pushpals/t2", &base)
        .await
        .unwrap();
    std::fs::write(worktree_path.join("src/lib.rs"), "pub fn bar() {}\n").unwrap();
    worktree.diff().await.unwrap();
    worktree.commit("change", &identity()).await.unwrap();

    let ran: Vec<_> = std::fs::read_dir(marker_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        ran.is_empty(),
        "repository-controlled programs ran: {ran:?}"
    );
}

#[tokio::test]
async fn not_a_repository_and_no_commits_are_clear_errors() {
    let plain = tempfile::tempdir().unwrap();
    let err = Repo::open(plain.path()).await.unwrap_err();
    assert!(matches!(err, GitError::NotARepo { .. }), "{err}");
    assert!(err.to_string().contains("is not a git repository"));

    let missing = plain.path().join("nope");
    let err = Repo::open(&missing).await.unwrap_err();
    assert!(matches!(err, GitError::NoSuchDir { .. }), "{err}");
    assert!(!err.to_string().contains("git init"), "{err}");

    let empty = TempRepo::empty();
    let err = Repo::open(&empty.path).await.unwrap_err();
    assert!(matches!(err, GitError::NoCommits { .. }), "{err}");
    assert!(err.to_string().contains("no commits yet"));
}

#[tokio::test]
async fn a_branch_that_exists_already_is_an_error_not_an_overwrite() {
    let fixture = TempRepo::new();
    fixture.git(&["branch", "pushpals/taken"]);
    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let err = repo
        .add_worktree(&data.path().join("wt"), "pushpals/taken", &base)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[tokio::test]
async fn a_worktree_entry_cut_short_is_repaired_so_new_worktrees_can_be_made() {
    let fixture = TempRepo::new();
    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    repo.add_worktree(&data.path().join("cut1"), "pushpals/cut1", &base)
        .await
        .unwrap();
    // What a `worktree add` killed half way leaves: an empty commondir.
    let entry = fixture.path.join(".git/worktrees/cut1");
    std::fs::write(entry.join("commondir"), "").unwrap();
    let refused = repo
        .add_worktree(&data.path().join("next"), "pushpals/next", &base)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("commondir"), "{refused}");

    let names = ["cut1".to_owned(), "other".to_owned()];
    assert_eq!(
        repo.repair_worktree_entries(&names).await.unwrap(),
        ["cut1"]
    );
    assert!(!entry.exists());
    // The refused `worktree add` made its branch before it failed.
    let next = data.path().join("next");
    repo.clear_unrecorded_worktree(&next, "pushpals/next")
        .await
        .unwrap();
    repo.add_worktree(&next, "pushpals/next", &base)
        .await
        .unwrap();
    assert!(
        repo.repair_worktree_entries(&names)
            .await
            .unwrap()
            .is_empty(),
        "a sound entry stays"
    );
}

#[tokio::test]
async fn an_unrecorded_worktree_and_its_branch_are_cleared_for_a_fresh_start() {
    let fixture = TempRepo::new();
    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("t1");
    repo.add_worktree(&path, "pushpals/t1", &base)
        .await
        .unwrap();
    repo.clear_unrecorded_worktree(&path, "pushpals/t1")
        .await
        .unwrap();
    assert!(!path.exists());
    assert_eq!(repo.branch_commit("pushpals/t1").await.unwrap(), None);
    // A plain directory left where the worktree goes is cleared too.
    std::fs::create_dir_all(path.join("half")).unwrap();
    repo.clear_unrecorded_worktree(&path, "pushpals/t1")
        .await
        .unwrap();
    repo.add_worktree(&path, "pushpals/t1", &base)
        .await
        .unwrap();
    assert!(path.join(".git").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worktrees_made_at_the_same_time_all_succeed() {
    let fixture = TempRepo::new();
    let repo = Repo::open(&fixture.path).await.unwrap();
    let base = repo.head_commit().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut made = Vec::new();
    for n in 0..12 {
        let (repo, base, path) = (
            repo.clone(),
            base.clone(),
            data.path().join(format!("w{n}")),
        );
        made.push(tokio::spawn(async move {
            repo.add_worktree(&path, &format!("pushpals/w{n}"), &base)
                .await
        }));
    }
    for handle in made {
        handle.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_remotes_url_is_read_and_a_missing_remote_is_none() {
    let fixture = TempRepo::new();
    let repo = Repo::open(&fixture.path).await.unwrap();
    assert_eq!(repo.remote_url("origin").await.unwrap(), None);
    fixture.git(&["remote", "add", "origin", "git@host.example:me/app.git"]);
    assert_eq!(
        repo.remote_url("origin").await.unwrap().as_deref(),
        Some("git@host.example:me/app.git")
    );
    assert_eq!(repo.remote_url("upstream").await.unwrap(), None);
}
