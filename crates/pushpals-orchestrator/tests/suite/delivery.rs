//! Delivery to a real (local, bare) remote: push after approval, rebase
//! when the base moved, nothing pushed on conflicts.
//!
//! Over 400 lines: delivery to a real remote and forge (push, rebase, conflicts, PRs, merge,
//! grants); concurrency is in `delivery_once`.

use super::support::*;
use pushpals_core::{ApprovalAction, Decision, TaskState};
use pushpals_orchestrator::{ApprovalScope, OrchestratorError};
use pushpals_test_support::{TempRepo, git_in};

/// A repository whose `origin` is a bare repository holding `main`.
pub(crate) fn repo_with_remote() -> (TempRepo, tempfile::TempDir) {
    let repo = TempRepo::new();
    let remote = tempfile::tempdir().unwrap();
    git_in(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    (repo, remote)
}

/// Another clone pushes a commit to the remote's main.
pub(crate) fn move_remote_base(remote: &std::path::Path, file: &str, content: &str) {
    let other = tempfile::tempdir().unwrap();
    git_in(
        other.path(),
        &["clone", "-q", remote.to_str().unwrap(), "c"],
    );
    let clone = other.path().join("c");
    std::fs::write(clone.join(file), content).unwrap();
    git_in(&clone, &["add", "-A"]);
    git_in(&clone, &["commit", "-q", "-m", "moved"]);
    git_in(&clone, &["push", "-q", "origin", "main"]);
}

/// Decides the task's pending approval (of `action`) as "tester", once.
pub(crate) async fn decide(
    f: &Fixture,
    task_id: &pushpals_core::TaskId,
    action: Option<ApprovalAction>,
    decision: Decision,
) -> Result<pushpals_orchestrator::DecisionOutcome, OrchestratorError> {
    f.orchestrator
        .decide_for_task(
            task_id,
            action,
            decision,
            ApprovalScope::Once,
            "tester",
            None,
        )
        .await
}

pub(crate) async fn committed_task(f: &Fixture, command: &str) -> pushpals_core::Task {
    let task = create(&f.orchestrator, "Edit", command).await;
    wait_until(&f.orchestrator, &task.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;
    let outcome = decide(f, &task.id, Some(ApprovalAction::Commit), Decision::Approve)
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Committed);
    outcome.task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_push_puts_the_branch_on_the_remote() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].action, ApprovalAction::Push);

    let outcome = decide(&f, &task.id, None, Decision::Approve).await.unwrap();
    let sha = outcome.task.commit_sha.clone().unwrap();
    assert_eq!(git_in(remote.path(), &["rev-parse", &task.branch]), sha);
    assert!(
        kinds(&f.orchestrator, &task.id)
            .await
            .iter()
            .any(|k| k == "push")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_base_is_rebased_onto_before_the_push() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    move_remote_base(remote.path(), "other.txt", "elsewhere\n");
    let remote_main = git_in(remote.path(), &["rev-parse", "main"]);

    let outcome = decide(&f, &task.id, None, Decision::Approve).await.unwrap();
    let pushed = git_in(remote.path(), &["rev-parse", &task.branch]);
    assert_eq!(Some(pushed.clone()), outcome.task.commit_sha);
    assert_eq!(
        git_in(remote.path(), &["rev-parse", &format!("{pushed}~1")]),
        remote_main
    );
    assert_eq!(
        outcome.task.base_commit.as_deref(),
        Some(remote_main.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_with_the_moved_base_stop_the_push_and_name_the_file() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    let task = committed_task(&f, "sed -i s/foo/bar/ src/lib.rs").await;
    move_remote_base(remote.path(), "src/lib.rs", "pub fn baz() {}\n");

    let err = decide(&f, &task.id, None, Decision::Approve)
        .await
        .unwrap_err();
    assert!(
        matches!(err, OrchestratorError::DeliveryBlocked(_)),
        "{err}"
    );
    assert!(err.to_string().contains("src/lib.rs"), "{err}");
    assert!(err.to_string().contains("nothing was pushed"), "{err}");
    assert!(git_in(remote.path(), &["branch", "--list", &task.branch]).is_empty());
    // The approval is still pending, the branch untouched.
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        f.repo.git(&["rev-parse", &task.branch]),
        task.commit_sha.unwrap()
    );
    assert!(
        kinds(&f.orchestrator, &task.id)
            .await
            .iter()
            .any(|k| k == "push_blocked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_remote_no_push_is_offered() {
    let f = start(TempRepo::new(), "").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    assert!(
        f.orchestrator
            .store()
            .approvals(Some(task.id.clone()), true)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_commit_and_push_without_asking_but_never_past_the_secret_gate() {
    use pushpals_core::GrantKind;
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "").await;
    f.orchestrator
        .set_grant(None, GrantKind::AutoCommit, true, "tester")
        .await
        .unwrap();
    let (repo_name, grants) = f
        .orchestrator
        .set_grant(None, GrantKind::AutoPush, true, "tester")
        .await
        .unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(repo_name, f.orchestrator.repositories().all()[0].name());

    let task = create(&f.orchestrator, "Edit", "echo more >> README.md").await;
    let task = wait_until(&f.orchestrator, &task.id, |s| s.is_final()).await;
    assert_eq!(task.state, TaskState::Committed);
    // Pushed too, without an approval from anyone (right after the commit).
    for _ in 0..500 {
        if kinds(&f.orchestrator, &task.id)
            .await
            .iter()
            .any(|k| k == "push")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let task = f.orchestrator.store().task(&task.id).await.unwrap();
    let pushed = git_in(remote.path(), &["rev-parse", &task.branch]);
    assert_eq!(Some(pushed), task.commit_sha);
    let approvals = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), false)
        .await
        .unwrap();
    assert!(
        approvals.iter().all(|a| a
            .decided_by
            .as_deref()
            .is_some_and(|by| by.contains("grant (given by tester)"))),
        "{approvals:?}"
    );

    // The secret gate still holds.
    let secret = create(
        &f.orchestrator,
        "Key",
        "printf 'k = \"%s%s\"\\n' AKIAQWERTY UIOPASDFGH > k.py",
    )
    .await;
    let secret = wait_until(&f.orchestrator, &secret.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(secret.state, TaskState::AwaitingApproval);

    // Taken back: the next task asks again.
    f.orchestrator
        .set_grant(None, GrantKind::AutoCommit, false, "tester")
        .await
        .unwrap();
    let asked = create(&f.orchestrator, "Edit again", "echo again >> README.md").await;
    let asked = wait_until(&f.orchestrator, &asked.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(asked.state, TaskState::AwaitingApproval);
    assert!(
        kinds(&f.orchestrator, &asked.id)
            .await
            .iter()
            .all(|k| k != "commit")
    );
}

/// A forge on loopback that answers pull requests as GitHub does (for
/// any repository, noted as `_repo` beside the request); the
/// token is the value of CARGO_PKG_NAME, which cargo sets for every test
/// run (so no environment variable has to be set).
pub(crate) async fn fake_forge() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;
    async fn pulls(
        State(seen): State<Seen>,
        axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
        headers: HeaderMap,
        Json(mut body): Json<serde_json::Value>,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let expected = format!("Bearer {}", env!("CARGO_PKG_NAME"));
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({ "message": "Bad credentials" })),
            );
        }
        // Which repository it was opened on, beside what was asked.
        body["_repo"] = format!("{owner}/{name}").into();
        seen.lock().unwrap().push(body);
        // As slow as a real forge, so approvals tapped together overlap.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        (
            StatusCode::CREATED,
            Json(
                serde_json::json!({ "html_url": "https://forge.test/acme/w/pull/3", "number": 3 }),
            ),
        )
    }
    let seen: Seen = Default::default();
    let app = axum::Router::new()
        .route("/repos/{owner}/{name}/pulls", axum::routing::post(pulls))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_push_a_pull_request_is_its_own_approval() {
    let (repo, _remote) = repo_with_remote();
    repo.write("pushpals.toml", "[checks]\ntest = \"true\"\n");
    repo.commit_all("checks");
    repo.git(&["push", "-q", "origin", "main"]);
    let (forge_url, seen) = fake_forge().await;
    let settings = format!(
        "[forge]\nkind = \"github\"\napi_url = \"{forge_url}\"\nowner = \"acme\"\nrepo = \"w\"\ntoken_env = \"CARGO_PKG_NAME\"\ndraft = true\n"
    );
    let f = start(repo, &settings).await;
    let task = committed_task(&f, "echo more >> README.md").await;
    decide(&f, &task.id, Some(ApprovalAction::Push), Decision::Approve)
        .await
        .unwrap();
    let pending = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), true)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].action, ApprovalAction::Pr);
    assert!(
        pending[0].summary.contains("into main"),
        "{}",
        pending[0].summary
    );

    decide(&f, &task.id, None, Decision::Approve).await.unwrap();
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["head"], task.branch);
    assert_eq!(bodies[0]["base"], "main");
    assert_eq!(bodies[0]["draft"], true);
    assert_eq!(bodies[0]["_repo"], "acme/w");
    assert_eq!(bodies[0]["title"], "Edit");
    let body = bodies[0]["body"].as_str().unwrap();
    assert!(body.contains("`README.md` (+1 −0)"), "{body}");
    assert!(
        body.contains("### Summary\nRan `echo more >> README.md`"),
        "{body}"
    );
    assert!(body.contains("test: `true` — passed"), "{body}");
    assert!(body.contains("audit export"), "{body}");
    let events = f
        .orchestrator
        .store()
        .events(pushpals_store::EventQuery {
            task_id: Some(task.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let opened = events.iter().find(|e| e.kind == "pr_opened").unwrap();
    assert_eq!(opened.payload["url"], "https://forge.test/acme/w/pull/3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_without_a_token_is_a_clear_error_and_stays_pending() {
    let (repo, _remote) = repo_with_remote();
    let settings = "[forge]\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\nowner = \"acme\"\nrepo = \"w\"\ntoken_env = \"PUSHPALS_TEST_NO_SUCH_TOKEN\"\n";
    let f = start(repo, settings).await;
    let task = committed_task(&f, "echo more >> README.md").await;
    decide(&f, &task.id, Some(ApprovalAction::Push), Decision::Approve)
        .await
        .unwrap();
    let err = decide(&f, &task.id, None, Decision::Approve)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("PUSHPALS_TEST_NO_SUCH_TOKEN"),
        "{err}"
    );
    assert_eq!(
        f.orchestrator
            .store()
            .approvals(Some(task.id.clone()), true)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_never_touches_a_checked_out_base_and_fast_forwards_or_makes_a_merge_commit() {
    let f = start(TempRepo::new(), "[delivery]\nbase_branch = \"main\"\n").await;
    let first = committed_task(&f, "echo more >> README.md").await;
    f.orchestrator.request_merge(&first.id).await.unwrap();
    let err = decide(
        &f,
        &first.id,
        Some(ApprovalAction::Merge),
        Decision::Approve,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("main is checked out in"), "{err}");
    let main_before = f.repo.git(&["rev-parse", "main"]);
    assert_ne!(Some(main_before.clone()), first.commit_sha);

    // The person switches to another branch: now main can move.
    f.repo.git(&["checkout", "-q", "-b", "elsewhere"]);
    decide(
        &f,
        &first.id,
        Some(ApprovalAction::Merge),
        Decision::Approve,
    )
    .await
    .unwrap();
    assert_eq!(
        Some(f.repo.git(&["rev-parse", "main"])),
        first.commit_sha,
        "fast-forward"
    );

    // A task started from the old base needs a merge commit.
    let second = committed_task(&f, "echo other > other.txt").await;
    f.orchestrator.request_merge(&second.id).await.unwrap();
    decide(
        &f,
        &second.id,
        Some(ApprovalAction::Merge),
        Decision::Approve,
    )
    .await
    .unwrap();
    let parents = f.repo.git(&["rev-list", "--parents", "-n", "1", "main"]);
    assert_eq!(
        parents.split_whitespace().count(),
        3,
        "a merge commit has two parents: {parents}"
    );
    assert_eq!(f.repo.git(&["show", "main:other.txt"]), "other");
    assert!(
        kinds(&f.orchestrator, &second.id)
            .await
            .iter()
            .any(|k| k == "merged")
    );
    // The person's checkout did not move.
    assert_eq!(
        f.repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]),
        "elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_token_comes_from_the_environment_or_the_push_says_which_variable_is_empty() {
    let (repo, remote) = repo_with_remote();
    let f = start(
        repo,
        "[delivery]\ntoken_env = \"PUSHPALS_TEST_NO_SUCH_TOKEN\"\n",
    )
    .await;
    let task = committed_task(&f, "echo more >> README.md").await;
    let err = decide(&f, &task.id, None, Decision::Approve)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("PUSHPALS_TEST_NO_SUCH_TOKEN"),
        "{err}"
    );
    assert!(git_in(remote.path(), &["branch", "--list", &task.branch]).is_empty());

    // CARGO_PKG_NAME is set for every test run: a token that is there.
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "[delivery]\ntoken_env = \"CARGO_PKG_NAME\"\n").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    decide(&f, &task.id, None, Decision::Approve).await.unwrap();
    assert!(!git_in(remote.path(), &["branch", "--list", &task.branch]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denying_a_push_or_a_merge_records_it_and_changes_nothing() {
    let (repo, remote) = repo_with_remote();
    let f = start(repo, "[delivery]\nbase_branch = \"main\"\n").await;
    let task = committed_task(&f, "echo more >> README.md").await;
    let outcome = f
        .orchestrator
        .decide_for_task(
            &task.id,
            Some(ApprovalAction::Push),
            Decision::Deny,
            ApprovalScope::Once,
            "tester",
            Some("not yet".into()),
        )
        .await
        .unwrap();
    assert_eq!(outcome.approval.state, pushpals_core::ApprovalState::Denied);
    assert_eq!(outcome.approval.reason.as_deref(), Some("not yet"));
    assert!(git_in(remote.path(), &["branch", "--list", &task.branch]).is_empty());

    let main_before = f.repo.git(&["rev-parse", "main"]);
    f.orchestrator.request_merge(&task.id).await.unwrap();
    decide(&f, &task.id, Some(ApprovalAction::Merge), Decision::Deny)
        .await
        .unwrap();
    assert_eq!(f.repo.git(&["rev-parse", "main"]), main_before);
    assert!(
        f.orchestrator
            .store()
            .approvals(Some(task.id.clone()), true)
            .await
            .unwrap()
            .is_empty()
    );
}
