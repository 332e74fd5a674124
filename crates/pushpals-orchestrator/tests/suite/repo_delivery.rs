//! Where each repository's work goes when one server serves several: a
//! token reaches only the host it is for, and each repository's pull
//! request opens on its own repository on the forge.

use super::delivery::{fake_forge, repo_with_remote};
use super::git_servers::{SmartHttp, bare_copy};
use super::repositories::{add, task_in};
use super::support::{start, wait_until};
use pushpals_core::{ApprovalAction, Decision, TaskState};
use pushpals_orchestrator::Orchestrator;
use pushpals_test_support::TempRepo;
use std::sync::atomic::Ordering;

/// A task in `repo`, run and committed.
async fn committed_in(
    orchestrator: &std::sync::Arc<Orchestrator>,
    repo: &str,
) -> pushpals_core::Task {
    let task = task_in(orchestrator, repo, &format!("echo {repo} >> {repo}.txt")).await;
    wait_until(orchestrator, &task.id, |s| s == TaskState::AwaitingApproval).await;
    let outcome = approve(orchestrator, &task, ApprovalAction::Commit)
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Committed);
    outcome.task
}

/// A checkout whose `origin` is `acme/NAME.git` on the smart HTTP server.
fn checkout_on(http: &SmartHttp, root: &std::path::Path, name: &str) -> TempRepo {
    let checkout = TempRepo::new();
    bare_copy(&checkout.path, root, &format!("acme/{name}"));
    checkout.git(&[
        "remote",
        "add",
        "origin",
        &format!("{}/acme/{name}.git", http.base),
    ]);
    checkout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_repository_pushes_with_the_token_for_its_host_and_opens_its_pull_request_on_its_own_forge_repository()
 {
    let (first, _first_remote) = repo_with_remote();
    let first_name = first.path.file_name().unwrap().to_str().unwrap().to_owned();
    let served_dir = tempfile::tempdir().unwrap();
    // The git server takes the token CARGO_PKG_NAME holds, as a forge does.
    let http = SmartHttp::start(served_dir.path(), "x-access-token", env!("CARGO_PKG_NAME")).await;
    let tool = checkout_on(&http, served_dir.path(), "tool");
    let other = checkout_on(&http, served_dir.path(), "other");
    let (forge_url, seen) = fake_forge().await;
    // The forge and the git server are both on 127.0.0.1: the push token's
    // host, by default, and where "tool"'s forge repository is read from.
    // "other" is told its token is for another host.
    let settings = format!(
        "[delivery]\ntoken_env = \"CARGO_PKG_NAME\"\n\
         [forge]\nkind = \"github\"\napi_url = \"{forge_url}\"\ntoken_env = \"CARGO_PKG_NAME\"\n\
         [repos.{first_name}]\nforge_repo = \"acme/w\"\n"
    );
    let f = start(first, &settings).await;
    let orchestrator = &f.orchestrator;
    assert_eq!(orchestrator.repositories().all()[0].name(), first_name);
    for (path, name) in [(&tool.path, "tool"), (&other.path, "other")] {
        let path = std::fs::canonicalize(path).unwrap();
        add(orchestrator, path.to_str().unwrap(), Some(name), None)
            .await
            .unwrap();
    }

    // "tool": its remote is on the token's host, so the push carries the
    // token, and its pull request goes to acme/tool, read from that URL.
    let in_tool = committed_in(orchestrator, "tool").await;
    decide_push_and_pr(orchestrator, &in_tool).await;
    let branches = pushpals_test_support::git_in(
        &served_dir.path().join("acme/tool.git"),
        &["branch", "--list", &in_tool.branch],
    );
    assert!(!branches.is_empty(), "the branch did not reach acme/tool");

    // The first repository: its remote is a local path, so its forge
    // repository is the one its [repos.NAME] names.
    let in_first = committed_in(orchestrator, &first_name).await;
    decide_push_and_pr(orchestrator, &in_first).await;
    let bodies = seen.lock().unwrap().clone();
    let opened: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| (b["_repo"].as_str().unwrap(), b["head"].as_str().unwrap()))
        .collect();
    assert_eq!(
        opened,
        vec![
            ("acme/tool", in_tool.branch.as_str()),
            ("acme/w", in_first.branch.as_str())
        ]
    );
    drop(f);

    // Told the token is for another host, the same server sends it
    // nowhere near 127.0.0.1: the push is refused for missing credentials
    // and says so; nothing reaches the remote. (Its base is not fetched
    // before the task: that fetch would wait for credentials the same way.)
    let settings = format!(
        "[delivery]\ntoken_env = \"CARGO_PKG_NAME\"\ntoken_host = \"git.example\"\nfetch_before_task = false\n\
         [forge]\nkind = \"github\"\napi_url = \"{forge_url}\"\ntoken_env = \"CARGO_PKG_NAME\"\n"
    );
    let f = start(TempRepo::new(), &settings).await;
    let orchestrator = &f.orchestrator;
    let path = std::fs::canonicalize(&other.path).unwrap();
    add(orchestrator, path.to_str().unwrap(), Some("other"), None)
        .await
        .unwrap();
    let refused_before = http.refused.load(Ordering::SeqCst);
    let in_other = committed_in(orchestrator, "other").await;
    let err = approve(orchestrator, &in_other, ApprovalAction::Push)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("[repos.other] token_env"),
        "the error says how to give this remote a token: {err}"
    );
    assert!(!err.to_string().contains(env!("CARGO_PKG_NAME")), "{err}");
    assert!(http.refused.load(Ordering::SeqCst) > refused_before);
    let branches = pushpals_test_support::git_in(
        &served_dir.path().join("acme/other.git"),
        &["branch", "--list", &in_other.branch],
    );
    assert!(branches.is_empty(), "{branches}");
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no pull request was asked for"
    );
}

/// Approves the task's pending approval of `action`, once.
async fn approve(
    orchestrator: &Orchestrator,
    task: &pushpals_core::Task,
    action: ApprovalAction,
) -> Result<pushpals_orchestrator::DecisionOutcome, pushpals_orchestrator::OrchestratorError> {
    orchestrator
        .decide_for_task(
            &task.id,
            Some(action),
            Decision::Approve,
            pushpals_orchestrator::ApprovalScope::Once,
            "tester",
            None,
        )
        .await
}

/// Approves the task's push, then the pull request offered after it.
async fn decide_push_and_pr(orchestrator: &Orchestrator, task: &pushpals_core::Task) {
    for action in [ApprovalAction::Push, ApprovalAction::Pr] {
        approve(orchestrator, task, action)
            .await
            .unwrap_or_else(|e| panic!("{action:?} of {}: {e}", task.repo));
    }
}
