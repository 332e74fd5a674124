//! Many repositories on one orchestrator: a local checkout and clones over
//! git's smart HTTP (with a token) and `git daemon`, tasks in both at once,
//! grants that stay in their repository, a new upstream commit as the next
//! task's base, the token nowhere on disk, and the errors a person meets.
//!
//! Over 400 lines: each clone journey (smart HTTP, `git daemon`) walks a
//! repository's whole life in one test; the servers are in `git_servers`.

use super::git_servers::{Daemon, SmartHttp, bare_copy};
use super::support::{start, user, wait_until};
use pushpals_core::{GrantKind, TaskState};
use pushpals_orchestrator::{AddRepository, NewTask, Orchestrator, OrchestratorError};
use pushpals_store::StoreError;
use pushpals_test_support::{TempRepo, git_in};
use std::sync::Arc;

const TOKEN: &str = "tok-5ecret-9f3a7c21";

pub(super) async fn add(
    orchestrator: &Orchestrator,
    source: &str,
    name: Option<&str>,
    branch: Option<&str>,
) -> Result<String, OrchestratorError> {
    orchestrator
        .add_repository(
            AddRepository {
                source: source.to_owned(),
                name: name.map(str::to_owned),
                branch: branch.map(str::to_owned),
            },
            user(),
        )
        .await
        .map(|served| served.name().to_owned())
}

pub(super) async fn task_in(
    orchestrator: &Arc<Orchestrator>,
    repo: &str,
    command: &str,
) -> pushpals_core::Task {
    orchestrator
        .create_task(
            NewTask {
                title: format!("Work in {repo}"),
                command: Some(command.into()),
                agent: None,
                approve_command: false,
                repo: Some(repo.into()),
            },
            user(),
        )
        .await
        .unwrap()
}

/// Every file under `dir` (not following links), as bytes.
fn files_under(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(&path, out);
        } else if kind.is_file() {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_checkout_and_a_clone_over_smart_http_serve_tasks_side_by_side() {
    let upstream = TempRepo::new();
    upstream.write("app.txt", "app\n");
    upstream.commit_all("the app");
    let served_dir = tempfile::tempdir().unwrap();
    let bare = bare_copy(&upstream.path, served_dir.path(), "app");
    let http = SmartHttp::start(served_dir.path(), "me", TOKEN).await;
    let f = start(TempRepo::new(), "").await;
    let orchestrator = &f.orchestrator;
    let local = orchestrator.repositories().all()[0].name().to_owned();

    // Without the token the server says what is missing; nothing is kept.
    let url = format!("{}/app.git", http.base);
    let refused = add(orchestrator, &url, None, None).await.unwrap_err();
    assert!(matches!(refused, OrchestratorError::Remote(_)), "{refused}");
    assert!(
        refused.to_string().contains("needs credentials"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("credential helper"),
        "{refused}"
    );
    assert_eq!(orchestrator.repositories().all().len(), 1);
    assert!(http.refused.load(std::sync::atomic::Ordering::SeqCst) > 0);

    // A remote that redirects elsewhere gets no clone, and the place it
    // points at never sees the token (git follows no redirect with it).
    let (moved, _redirecting) = super::git_servers::redirector(&http.base).await;
    let before = http.requests.load(std::sync::atomic::Ordering::SeqCst);
    let via = format!(
        "http://me:{TOKEN}@{}/app.git",
        moved.trim_start_matches("http://")
    );
    let redirected = add(orchestrator, &via, Some("moved"), None)
        .await
        .unwrap_err();
    assert!(!redirected.to_string().contains(TOKEN), "{redirected}");
    assert_eq!(
        http.requests.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the redirect's target was asked"
    );

    // With it in the URL: cloned, the URL kept without it.
    let with_token = url.replacen("http://", &format!("http://me:{TOKEN}@"), 1);
    assert_eq!(
        add(orchestrator, &with_token, None, None).await.unwrap(),
        "app"
    );
    let views = orchestrator.repository_views().await.unwrap();
    let app = views.iter().find(|v| v.name == "app").unwrap();
    assert_eq!(app.origin.as_deref(), Some(url.as_str()));
    assert!(app.credential_in_memory);
    assert_eq!(app.branch.as_deref(), Some("main"));

    // A name clash and a second registration of the same URL's name.
    let clash = add(orchestrator, &with_token, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(clash, OrchestratorError::Store(StoreError::Duplicate(_))),
        "{clash}"
    );
    assert!(clash.to_string().contains("--name"), "{clash}");

    // Tasks in both at once; each works in its own repository.
    let (in_local, in_app) = tokio::join!(
        task_in(orchestrator, &local, "echo local > local.txt"),
        task_in(orchestrator, "app", "cat app.txt > copy.txt"),
    );
    let in_local = wait_until(orchestrator, &in_local.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    let in_app = wait_until(orchestrator, &in_app.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(
        in_local.state,
        TaskState::AwaitingApproval,
        "{:?}",
        in_local.reason
    );
    assert_eq!(
        in_app.state,
        TaskState::AwaitingApproval,
        "{:?}",
        in_app.reason
    );
    assert_eq!(
        (in_local.repo.as_str(), in_app.repo.as_str()),
        (local.as_str(), "app")
    );
    let copied = std::fs::read_to_string(
        std::path::Path::new(in_app.worktree_path.as_deref().unwrap()).join("copy.txt"),
    )
    .unwrap();
    assert_eq!(copied, "app\n");

    // A grant in one repository does not apply to the other.
    orchestrator
        .set_grant(Some("app"), GrantKind::AutoCommit, true, "tester")
        .await
        .unwrap();
    let granted = task_in(orchestrator, "app", "echo two > two.txt").await;
    let other = task_in(orchestrator, &local, "echo two > two.txt").await;
    let granted = wait_until(orchestrator, &granted.id, |s| s.is_final()).await;
    assert_eq!(granted.state, TaskState::Committed, "{:?}", granted.reason);
    let other = wait_until(orchestrator, &other.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(other.state, TaskState::AwaitingApproval);

    // A commit pushed upstream is the next task's base (fetched with the
    // token held in memory).
    let pusher = tempfile::tempdir().unwrap();
    git_in(
        pusher.path(),
        &["clone", "--quiet", bare.to_str().unwrap(), "w"],
    );
    let work = pusher.path().join("w");
    std::fs::write(work.join("upstream.txt"), "new\n").unwrap();
    git_in(&work, &["add", "-A"]);
    git_in(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "--quiet",
            "-m",
            "upstream moved",
        ],
    );
    git_in(&work, &["push", "--quiet", "origin", "HEAD:main"]);
    let moved = git_in(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let next = task_in(orchestrator, "app", "ls > listing.txt").await;
    let next = wait_until(orchestrator, &next.id, |s| s.is_final()).await;
    assert_eq!(next.base_commit.as_deref(), Some(moved.as_str()));
    assert_eq!(next.state, TaskState::Committed, "{:?}", next.reason);
    // A clone's base is nobody's checkout: merging locally is refused, with
    // what to do instead.
    let merge = orchestrator.request_merge(&next.id).await.unwrap_err();
    assert!(
        merge.to_string().contains("Approve the task's push"),
        "{merge}"
    );

    // `repo rm` is refused while a task waits in that repository.
    let busy = orchestrator
        .remove_repository(&local, user())
        .await
        .unwrap_err();
    assert!(
        matches!(
            busy,
            OrchestratorError::Store(StoreError::RepositoryBusy { .. })
        ),
        "{busy}"
    );
    assert_eq!(orchestrator.repositories().all().len(), 2);

    // The token is nowhere in the data directory (database, WAL, clone's
    // config, worktrees) nor in the event log.
    let mut files = Vec::new();
    files_under(f._data.path(), &mut files);
    assert!(files.len() > 10);
    for (path, bytes) in &files {
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "the token is in {}",
            path.display()
        );
    }
    let export = orchestrator.store().export_jsonl().await.unwrap();
    let export = String::from_utf8(export).unwrap();
    assert!(!export.contains(TOKEN));
    // Each exported event names its repository.
    let lines: Vec<serde_json::Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of_task = |id: &pushpals_core::TaskId| {
        lines
            .iter()
            .filter(|l| l["task_id"] == id.as_str())
            .map(|l| l["repo"].as_str().unwrap_or("none").to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(of_task(&in_app.id).into_iter().collect::<Vec<_>>(), ["app"]);
    assert_eq!(
        of_task(&in_local.id).into_iter().collect::<Vec<_>>(),
        std::slice::from_ref(&local)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "repo_added" && l["repo"] == "app")
    );

    // Removing the clone deletes it, once nothing waits in it (a commit
    // and two pushes wait now); a local checkout is never deleted.
    let clone_path = views.iter().find(|v| v.name == "app").unwrap().path.clone();
    assert!(std::path::Path::new(&clone_path).is_dir());
    let waiting = orchestrator
        .remove_repository("app", user())
        .await
        .unwrap_err();
    // The task numbers race (two were created at once): name them by theirs.
    assert!(
        waiting.to_string().contains(&format!("#{}", in_app.seq)),
        "{waiting}"
    );
    for task in orchestrator.store().tasks(None).await.unwrap() {
        if task.repo != "app" {
            continue;
        }
        for approval in orchestrator
            .store()
            .approvals(Some(task.id.clone()), true)
            .await
            .unwrap()
        {
            orchestrator
                .decide(
                    approval.id,
                    pushpals_core::Decision::Deny,
                    pushpals_orchestrator::ApprovalScope::Once,
                    "tester",
                    Some("not now".into()),
                )
                .await
                .unwrap();
        }
    }
    orchestrator.remove_repository("app", user()).await.unwrap();
    assert!(!std::path::Path::new(&clone_path).exists());
    assert!(f.repo.path.join(".git").is_dir());
    let gone = task_in_result(orchestrator, Some("app")).await.unwrap_err();
    assert!(gone.to_string().contains("pushpals repo add"), "{gone}");
}

pub(super) async fn task_in_result(
    orchestrator: &Arc<Orchestrator>,
    repo: Option<&str>,
) -> Result<pushpals_core::Task, OrchestratorError> {
    orchestrator
        .create_task(
            NewTask {
                title: "Work".into(),
                command: Some("true".into()),
                agent: None,
                approve_command: false,
                repo: repo.map(str::to_owned),
            },
            user(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_over_git_daemon_and_the_errors_a_person_meets() {
    let upstream = TempRepo::new();
    upstream.git(&["branch", "release"]);
    let served_dir = tempfile::tempdir().unwrap();
    bare_copy(&upstream.path, served_dir.path(), "tool");
    git_in(
        served_dir.path(),
        &["init", "--quiet", "--bare", "empty.git"],
    );
    // A bare copy whose HEAD names a branch it does not have (as the clsx
    // bundle cloned bare does: its HEAD says master, its branch is main).
    let dangling = bare_copy(&upstream.path, served_dir.path(), "dangling");
    git_in(&dangling, &["symbolic-ref", "HEAD", "refs/heads/master"]);
    let daemon = Daemon::start(served_dir.path()).await;
    let f = start(TempRepo::new(), "").await;
    let orchestrator = &f.orchestrator;

    let url = format!("{}/tool.git", daemon.base);
    assert_eq!(
        add(orchestrator, &url, Some("tool-release"), Some("release"))
            .await
            .unwrap(),
        "tool-release"
    );
    let task = task_in(orchestrator, "tool-release", "echo x > x.txt").await;
    let task = wait_until(orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(task.state, TaskState::AwaitingApproval, "{:?}", task.reason);

    let several = task_in_result(orchestrator, None).await.unwrap_err();
    assert!(
        several.to_string().contains("several repositories"),
        "{several}"
    );

    let cases = [
        (format!("{}/empty.git", daemon.base), None, "is empty"),
        (
            format!("{}/dangling.git", daemon.base),
            None,
            "pass --branch with one of: main, release",
        ),
        (url.clone(), Some("no-such-branch"), "has no branch"),
        (
            "git://127.0.0.1:1/tool.git".to_owned(),
            None,
            "cannot be reached",
        ),
        (
            "ftp://127.0.0.1/tool.git".to_owned(),
            None,
            "not a transport",
        ),
        ("--upload-pack=touch /tmp/pwned".to_owned(), None, "option"),
        ("/no/such/dir".to_owned(), None, "does not exist"),
    ];
    for (source, branch, words) in cases {
        let error = add(orchestrator, &source, Some("other"), branch)
            .await
            .unwrap_err();
        assert!(error.to_string().contains(words), "{source}: {error}");
    }
    let bad_name = add(orchestrator, &url, Some("../up"), None)
        .await
        .unwrap_err();
    assert!(
        bad_name.to_string().contains("cannot name a repository"),
        "{bad_name}"
    );
    // Nothing half-made was left: the local checkout's directory (its
    // caches) and the one clone.
    let homes: Vec<_> = std::fs::read_dir(f._data.path().join("repos"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(homes.len(), 2, "{homes:?}");
    assert_eq!(orchestrator.repositories().all().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_a_stop_cut_short_is_swept_at_the_next_start_and_nothing_is_registered() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    // What a server killed during `git clone` leaves: the clone's own
    // directory, half written, and no row in the store.
    let cut = data.path().join("repos/app-abcd1234/checkout.partial");
    std::fs::create_dir_all(cut.join(".git/objects")).unwrap();
    std::fs::write(cut.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let orchestrator = super::support::boot(&repo, data.path(), "").await;
    assert!(!data.path().join("repos/app-abcd1234").exists());
    let names: Vec<String> = orchestrator
        .repository_views()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["repo"]);
    // The name is free to clone again.
    let upstream = TempRepo::new();
    let served = tempfile::tempdir().unwrap();
    let bare = bare_copy(&upstream.path, served.path(), "app");
    let url = format!("file://{}", bare.display());
    assert_eq!(add(&orchestrator, &url, None, None).await.unwrap(), "app");

    // A checkout deleted under the running server: new work there is
    // refused with why, `repo list` says so, and `repo rm` still works.
    let doomed = TempRepo::new();
    let doomed_path = std::fs::canonicalize(&doomed.path).unwrap();
    add(
        &orchestrator,
        doomed_path.to_str().unwrap(),
        Some("doomed"),
        None,
    )
    .await
    .unwrap();
    drop(doomed);
    let refused = task_in_result(&orchestrator, Some("doomed"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, OrchestratorError::Unavailable(_)),
        "{refused}"
    );
    assert!(refused.to_string().contains("is gone"), "{refused}");
    let views = orchestrator.repository_views().await.unwrap();
    let doomed_view = views.iter().find(|v| v.name == "doomed").unwrap();
    assert!(
        doomed_view
            .problem
            .as_deref()
            .unwrap_or("")
            .contains("is gone")
    );
    orchestrator
        .remove_repository("doomed", user())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_accepts_and_never_answers_is_given_up_with_why_and_nothing_is_kept() {
    // A server that takes the connection and never sends a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stalled.git", listener.local_addr().unwrap());
    let holding = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let orchestrator = super::support::boot(&repo, data.path(), "").await;
    // Without a limit git would wait for ever; the bound here only keeps a
    // regression from hanging the suite.
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        add(&orchestrator, &url, Some("stalled"), None),
    )
    .await
    .expect("the clone of a silent remote was never given up")
    .unwrap_err();
    assert!(refused.to_string().contains("stopped sending"), "{refused}");
    assert_eq!(orchestrator.repositories().all().len(), 1);
    // The local repository's home is there; nothing of the clone is.
    let left: Vec<String> = std::fs::read_dir(data.path().join("repos"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !left.iter().any(|name| name.starts_with("stalled")),
        "{left:?}"
    );
    holding.abort();
}
