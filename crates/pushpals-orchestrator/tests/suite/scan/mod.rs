//! The proactive scanner on fixture repositories made here: the static
//! detectors, proposals, scheduling and incremental scans; test runs and
//! linters in their own modules.

mod linters;
mod test_runs;

use super::support::{start, user};
use pushpals_test_support::TempRepo;

const WORKFLOW: &str = "on:\n  pull_request_target:\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n      - run: make test\n";
const PINNED: &str = "on:\n  pull_request:\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@0123456789abcdef0123456789abcdef01234567\n      - run: make test\n";

fn fixture() -> TempRepo {
    let repo = TempRepo::new();
    // A secret committed, then removed: still in history.
    repo.write("config.py", "aws_key = \"AKIAABCDEFGHIJKLMNOP\"\n");
    repo.commit_all("add config");
    repo.write("config.py", "aws_key = None\n");
    repo.commit_all("remove the key");
    // A TODO hotspot: many markers, changed often.
    for round in 0..3 {
        repo.write(
            "src/lib.rs",
            &format!(
                "pub fn foo() {{}}\n// TODO a\n// TODO b\n// FIXME c\n// HACK d\n// round {round}\n"
            ),
        );
        repo.commit_all("churn");
    }
    repo.write(".github/workflows/ci.yml", WORKFLOW);
    repo.write("README.md", "# demo\n\nSee [the guide](docs/guide.md).\n");
    repo.commit_all("ci and docs");
    repo
}

#[tokio::test]
async fn static_detectors_find_keep_and_close_findings() {
    let f = start(fixture(), "").await;
    let report = f.orchestrator.scan(None, user()).await.unwrap();
    let find = |kind: &str, file: &str| {
        report
            .open
            .iter()
            .filter(|x| x.kind == kind && x.file.as_deref() == Some(file))
            .cloned()
            .collect::<Vec<_>>()
    };
    let history = find("secret_history", "config.py");
    assert_eq!(history.len(), 1, "{:#?}", report.open);
    assert_eq!(history[0].line, Some(1));
    assert!(history[0].evidence["commit"].as_str().unwrap().len() == 40);
    assert!(
        !history[0]
            .evidence
            .to_string()
            .contains("AKIAABCDEFGHIJKLMNOP"),
        "evidence is masked"
    );
    assert!(
        find("secret", "config.py").is_empty(),
        "no longer in the tree"
    );

    let ci = find("ci_config", ".github/workflows/ci.yml");
    assert!(
        ci.iter().any(|x| x.severity == "high" && x.line == Some(9)),
        "{ci:#?}"
    );
    assert!(
        ci.iter()
            .any(|x| x.title.contains("actions/checkout@v4") && x.line == Some(7))
    );
    let hotspot = find("todo_hotspot", "src/lib.rs");
    assert_eq!(hotspot.len(), 1);
    assert_eq!(hotspot[0].evidence["markers"], 4);
    let docs = find("docs", "README.md");
    assert!(
        docs.iter()
            .any(|x| x.title.contains("how to run the tests"))
    );
    assert!(
        docs.iter()
            .any(|x| x.title.contains("docs/guide.md") && x.line == Some(3))
    );
    assert_eq!(report.changes.new, report.open.len());

    // A rescan finds the same things under the same fingerprints.
    let again = f.orchestrator.scan(None, user()).await.unwrap();
    assert_eq!(again.changes.new, 0);
    assert_eq!(again.changes.still_open, report.open.len());
    let mut first: Vec<&str> = report.open.iter().map(|x| x.fingerprint.as_str()).collect();
    let mut second: Vec<&str> = again.open.iter().map(|x| x.fingerprint.as_str()).collect();
    first.sort();
    second.sort();
    assert_eq!(first, second);

    // Fixing the workflow closes its findings; a dismissal sticks.
    f.orchestrator
        .dismiss_finding(
            None,
            &hotspot[0].fingerprint,
            "known, tracked elsewhere",
            user(),
        )
        .await
        .unwrap();
    f.repo.write(".github/workflows/ci.yml", PINNED);
    f.repo.commit_all("pin the action");
    let fixed = f.orchestrator.scan(None, user()).await.unwrap();
    assert_eq!(fixed.changes.fixed, ci.len(), "{:#?}", fixed.changes);
    assert!(fixed.open.iter().all(|x| x.kind != "ci_config"));
    let all = f
        .orchestrator
        .store()
        .findings(pushpals_store::findings::FindingFilter {
            kind: Some("todo_hotspot".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all[0].state, "dismissed");
    assert_eq!(all[0].reason.as_deref(), Some("known, tracked elsewhere"));
    let closed = f
        .orchestrator
        .store()
        .findings(pushpals_store::findings::FindingFilter {
            kind: Some("ci_config".into()),
            state: Some("fixed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), ci.len());

    let unknown = f
        .orchestrator
        .dismiss_finding(None, "nope", "x", user())
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no finding nope"));
    let no_reason = f
        .orchestrator
        .dismiss_finding(None, &hotspot[0].fingerprint, " ", user())
        .await
        .unwrap_err();
    assert!(no_reason.to_string().contains("say why"));
}

#[tokio::test]
async fn a_proposal_becomes_a_task_whose_pr_text_carries_the_rationale_and_fixes_the_finding() {
    use pushpals_core::{Decision, TaskState};
    use pushpals_test_support::{Reply, ScriptedModel};
    let server = ScriptedModel::start(vec![
        Reply::tool(
            "edit_file",
            r#"{"path":".github/workflows/ci.yml","old_text":"actions/checkout@v4","new_text":"actions/checkout@0123456789abcdef0123456789abcdef01234567"}"#,
        ),
        Reply::tool("finish", r#"{"summary":"Pinned actions/checkout to a commit."}"#),
    ])
    .await;
    let repo = fixture();
    repo.write(
        "pushpals.toml",
        "[scan]\nmax_open_proposals = 1\nrun_tests = false\n",
    );
    repo.commit_all("scan settings");
    let f = super::support::start_sandboxed(repo, &super::agent::model_settings(&server, "")).await;
    let report = f.orchestrator.scan(None, user()).await.unwrap();
    let unpinned = report
        .open
        .iter()
        .find(|x| x.title.contains("actions/checkout@v4"))
        .unwrap()
        .fingerprint
        .clone();
    let docs = report
        .open
        .iter()
        .find(|x| x.kind == "docs")
        .unwrap()
        .fingerprint
        .clone();

    let mixed = f
        .orchestrator
        .propose(None, &[unpinned.clone(), docs.clone()], user())
        .await
        .unwrap_err();
    assert!(mixed.to_string().contains("one kind"), "{mixed}");
    let unknown = f
        .orchestrator
        .propose(None, &["nope".into()], user())
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no open finding nope"));

    let task = f
        .orchestrator
        .propose(None, std::slice::from_ref(&unpinned), user())
        .await
        .unwrap();
    assert!(
        task.title
            .starts_with("Fix: The action actions/checkout@v4"),
        "{}",
        task.title
    );
    let brief = task.agent.clone().unwrap();
    assert!(brief.prompt.contains("Why it matters") && brief.prompt.contains(&unpinned));
    assert_eq!(brief.scope, vec![".github/workflows/ci.yml".to_owned()]);
    let limited = f
        .orchestrator
        .propose(None, &[docs], user())
        .await
        .unwrap_err();
    assert!(
        limited.to_string().contains("max_open_proposals"),
        "{limited}"
    );

    let task = super::support::wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(task.state, TaskState::AwaitingApproval, "{:?}", task.reason);
    let diff = f.orchestrator.diff(&task.id).await.unwrap();
    assert_eq!(diff.diff.files[0].path, ".github/workflows/ci.yml");
    assert!(
        diff.pr_text.contains("### Why") && diff.pr_text.contains("not pinned to a commit"),
        "{}",
        diff.pr_text
    );
    assert!(diff.pr_text.contains(&unpinned), "the evidence is named");

    f.orchestrator
        .decide_for_task(
            &task.id,
            None,
            Decision::Approve,
            pushpals_orchestrator::ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    // Once the base branch has the change, the scan closes the finding.
    f.repo.git(&["merge", "-q", "--ff-only", &task.branch]);
    let after = f.orchestrator.scan(None, user()).await.unwrap();
    assert!(after.open.iter().all(|x| x.fingerprint != unpinned));
}

#[tokio::test(start_paused = true)]
async fn scans_run_on_schedule_and_when_head_moves() {
    let f = start(TempRepo::new(), "").await;
    let scans = || async {
        f.orchestrator
            .store()
            .events(pushpals_store::EventQuery::default())
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == "scan_finished")
            .count()
    };
    f.orchestrator.spawn_scanner();
    for _ in 0..200 {
        if scans().await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(scans().await, 1, "a first scan at start");
    // An hour later with nothing new: no scan.
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    assert_eq!(scans().await, 1);
    // New commits on the base branch: a scan at the next look.
    f.repo.write("NOTES.md", "new\n");
    f.repo.commit_all("new commit");
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        if scans().await == 2 {
            break;
        }
    }
    assert_eq!(scans().await, 2);
}

#[tokio::test]
async fn an_incremental_scan_looks_only_at_what_changed() {
    let f = start(fixture(), "").await;
    // Without an earlier scan, it is a full scan.
    let full = f.orchestrator.scan_changes(None, user()).await.unwrap();
    assert!(full.notes.iter().all(|n| !n.starts_with("incremental")));
    let hotspot = full
        .open
        .iter()
        .find(|x| x.kind == "todo_hotspot")
        .unwrap()
        .fingerprint
        .clone();
    let docs = full.open.iter().filter(|x| x.kind == "docs").count();
    assert!(docs > 0);

    f.repo.write(".github/workflows/ci.yml", PINNED);
    f.repo
        .write("deploy.py", "KEY = \"AKIAQWERTYUIOPASDFGH\"\n");
    f.repo.commit_all("pin, and a new key");
    let next = f.orchestrator.scan_changes(None, user()).await.unwrap();
    assert!(
        next.notes[0].starts_with("incremental: 2 changed files"),
        "{:?}",
        next.notes
    );
    assert!(
        next.open
            .iter()
            .any(|x| x.kind == "secret" && x.file.as_deref() == Some("deploy.py"))
    );
    assert!(
        next.open.iter().all(|x| x.kind != "ci_config"),
        "the pinned workflow's findings are fixed"
    );
    assert!(
        next.open.iter().any(|x| x.fingerprint == hotspot),
        "unchanged files keep their findings"
    );
    assert_eq!(
        next.open.iter().filter(|x| x.kind == "docs").count(),
        docs,
        "full-scan kinds are left alone"
    );
    assert!(next.changes.fixed >= 2);

    let same = f.orchestrator.scan_changes(None, user()).await.unwrap();
    assert_eq!((same.changes.new, same.changes.fixed), (0, 0));
    assert!(same.notes[0].starts_with("incremental: 0 changed files"));
}

#[tokio::test]
async fn a_repository_can_choose_its_detectors() {
    let repo = fixture();
    repo.write(
        "pushpals.toml",
        "[scan]\ndetectors = [\"ci_config\"]\nrun_tests = false\n",
    );
    repo.commit_all("only ci");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(None, user()).await.unwrap();
    assert!(!report.open.is_empty());
    assert!(
        report.open.iter().all(|x| x.kind == "ci_config"),
        "{:#?}",
        report.open
    );
    assert_eq!(report.detectors, ["ci_config"]);
}

#[tokio::test]
async fn commented_sha_pins_pass_and_downloads_piped_into_shells_are_found_in_workflows() {
    let repo = TempRepo::new();
    repo.write(
        ".github/workflows/release.yml",
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n\
         \x20     - uses: actions/checkout@0123456789abcdef0123456789abcdef01234567 # v4.2.2\n\
         \x20     - uses: \"actions/setup-node@89abcdef0123456789abcdef0123456789abcdef\"  # v4\n\
         \x20     - run: curl -fsSL https://example.com/install.sh | sh\n\
         \x20     - run: |\n\
         \x20         wget -qO- https://example.com/x \\\n\
         \x20           | sudo -E bash -s -- --yes\n\
         \x20     - run: curl -o tool.tgz https://example.com/tool.tgz\n",
    );
    repo.commit_all("release workflow");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(None, user()).await.unwrap();
    let ci: Vec<_> = report
        .open
        .iter()
        .filter(|x| x.kind == "ci_config")
        .collect();
    assert!(
        ci.iter().all(|x| !x.title.contains("not pinned")),
        "{ci:#?}"
    );
    let mut piped: Vec<u64> = ci
        .iter()
        .filter(|x| x.title.contains("piped into a shell"))
        .filter_map(|x| x.line)
        .collect();
    piped.sort_unstable();
    assert_eq!(piped, vec![8, 10], "{ci:#?}");
}
