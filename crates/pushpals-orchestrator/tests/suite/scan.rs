//! The proactive scanner on fixture repositories made here.

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
    let report = f.orchestrator.scan(user()).await.unwrap();
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
    let again = f.orchestrator.scan(user()).await.unwrap();
    assert_eq!(again.changes.new, 0);
    assert_eq!(again.changes.still_open, report.open.len());
    let mut first: Vec<&str> = report.open.iter().map(|x| x.fingerprint.as_str()).collect();
    let mut second: Vec<&str> = again.open.iter().map(|x| x.fingerprint.as_str()).collect();
    first.sort();
    second.sort();
    assert_eq!(first, second);

    // Fixing the workflow closes its findings; a dismissal sticks.
    f.orchestrator
        .dismiss_finding(&hotspot[0].fingerprint, "known, tracked elsewhere", user())
        .await
        .unwrap();
    f.repo.write(".github/workflows/ci.yml", PINNED);
    f.repo.commit_all("pin the action");
    let fixed = f.orchestrator.scan(user()).await.unwrap();
    assert_eq!(fixed.changes.fixed, ci.len(), "{:#?}", fixed.changes);
    assert!(fixed.open.iter().all(|x| x.kind != "ci_config"));
    let all = f
        .orchestrator
        .store()
        .findings(Some("todo_hotspot".into()), None)
        .await
        .unwrap();
    assert_eq!(all[0].state, "dismissed");
    assert_eq!(all[0].reason.as_deref(), Some("known, tracked elsewhere"));
    let closed = f
        .orchestrator
        .store()
        .findings(Some("ci_config".into()), Some("fixed".into()))
        .await
        .unwrap();
    assert_eq!(closed.len(), ci.len());

    let unknown = f
        .orchestrator
        .dismiss_finding("nope", "x", user())
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no finding nope"));
    let no_reason = f
        .orchestrator
        .dismiss_finding(&hotspot[0].fingerprint, " ", user())
        .await
        .unwrap_err();
    assert!(no_reason.to_string().contains("say why"));
}

const FLAKY_MAKEFILE: &str = "test:\n\t@echo 'test math::adds ... ok'\n\t@echo 'test math::broken ... FAILED'\n\t@if [ -e .flip ]; then rm .flip; echo 'test net::flaky ... FAILED'; else touch .flip; echo 'test net::flaky ... ok'; fi\n\t@exit 1\n";

#[tokio::test]
async fn the_test_check_is_rerun_to_tell_failing_from_flaky() {
    let repo = TempRepo::new();
    repo.write("Makefile", FLAKY_MAKEFILE);
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"make test\"\n[scan]\ntest_reruns = 2\n",
    );
    repo.commit_all("tests");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    let of = |kind: &str| {
        report
            .open
            .iter()
            .filter(|x| x.kind == kind)
            .map(|x| (x.title.clone(), x.evidence.clone()))
            .collect::<Vec<_>>()
    };
    let failing = of("failing_test");
    assert_eq!(failing.len(), 1, "{:#?}", report);
    assert_eq!(failing[0].0, "math::broken fails");
    assert_eq!(failing[0].1["failed"], 3);
    let flaky = of("flaky_test");
    assert_eq!(flaky.len(), 1);
    assert!(
        flaky[0]
            .0
            .starts_with("net::flaky is flaky: it failed 1 of 3 runs"),
        "{}",
        flaky[0].0
    );
    assert_eq!(flaky[0].1["passed"], 2);
    assert!(
        flaky[0].1["excerpt"]
            .as_str()
            .unwrap()
            .contains("net::flaky ... FAILED")
    );
    // Each run is in the audit log.
    let events = f
        .orchestrator
        .store()
        .events(pushpals_store::EventQuery::default())
        .await
        .unwrap();
    let runs = events
        .iter()
        .filter(|e| {
            e.kind == "command_finished"
                && e.payload["step"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("scan:test:")
        })
        .count();
    assert_eq!(runs, 3);
}

#[tokio::test]
async fn tests_that_policy_does_not_allow_are_not_run_and_the_report_says_why() {
    let repo = TempRepo::new();
    repo.write("pushpals.toml", "[checks]\ntest = \"frobnicate --all\"\n");
    repo.commit_all("odd test command");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("policy says ask")),
        "{:?}",
        report.notes
    );
    let plain = start(TempRepo::new(), "").await;
    let report = plain.orchestrator.scan(user()).await.unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("no test check")),
        "{:?}",
        report.notes
    );
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
    let report = f.orchestrator.scan(user()).await.unwrap();
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
        .propose(&[unpinned.clone(), docs.clone()], user())
        .await
        .unwrap_err();
    assert!(mixed.to_string().contains("one kind"), "{mixed}");
    let unknown = f
        .orchestrator
        .propose(&["nope".into()], user())
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no open finding nope"));

    let task = f
        .orchestrator
        .propose(std::slice::from_ref(&unpinned), user())
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
    let limited = f.orchestrator.propose(&[docs], user()).await.unwrap_err();
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
    let after = f.orchestrator.scan(user()).await.unwrap();
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
async fn a_clippy_warning_is_found_and_its_proposal_is_fixed_by_clippy_itself() {
    use pushpals_core::TaskState;
    let repo = TempRepo::new();
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"scanned\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    repo.write(
        "src/lib.rs",
        "pub fn foo() {}\n\npub fn one() -> i32 {\n    return 1;\n}\n",
    );
    repo.write(
        "Cargo.lock",
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"scanned\"\nversion = \"0.1.0\"\n",
    );
    repo.write("pushpals.toml", "[scan]\nrun_tests = false\n");
    repo.commit_all("a crate");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    let lint: Vec<_> = report.open.iter().filter(|x| x.kind == "lint").collect();
    assert_eq!(lint.len(), 1, "{:#?} {:?}", report.open, report.notes);
    assert!(
        lint[0].title.starts_with("clippy::needless_return"),
        "{}",
        lint[0].title
    );
    assert_eq!(
        (lint[0].file.as_deref(), lint[0].line),
        (Some("src/lib.rs"), Some(4))
    );

    let task = f
        .orchestrator
        .propose(std::slice::from_ref(&lint[0].fingerprint), user())
        .await
        .unwrap();
    assert!(
        task.command
            .as_deref()
            .unwrap()
            .starts_with("cargo clippy --fix")
    );
    let task = super::support::wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(task.state, TaskState::AwaitingApproval, "{:?}", task.reason);
    let diff = f.orchestrator.diff(&task.id).await.unwrap();
    assert!(
        diff.diff.text.contains("-    return 1;") && diff.diff.text.contains("+    1"),
        "{}",
        diff.diff.text
    );
    assert!(diff.pr_text.contains("### Why"));
    let files: Vec<&str> = diff.diff.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        files,
        ["src/lib.rs"],
        "build output stays out of the change"
    );
}

#[tokio::test]
async fn a_linter_that_is_not_installed_is_skipped_with_the_install_hint() {
    let repo = TempRepo::new();
    repo.write(
        "pyproject.toml",
        "[project]\nname = \"p\"\nversion = \"0.1.0\"\n",
    );
    repo.write("app.py", "import os\n");
    repo.commit_all("python");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    let ruff_present = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("ruff").is_file()));
    if ruff_present {
        assert!(
            report
                .open
                .iter()
                .any(|x| x.kind == "lint" && x.title.starts_with("F401"))
        );
    } else {
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("ruff was skipped") && n.contains("pip install ruff")),
            "{:?}",
            report.notes
        );
    }
}

#[tokio::test]
async fn lock_files_are_matched_against_an_osv_database() {
    let osv = tempfile::tempdir().unwrap();
    std::fs::write(
        osv.path().join("TEST-2026-0001.json"),
        r#"{"id":"TEST-2026-0001","summary":"buffer overflow in insert_many","aliases":["CVE-2021-25900"],
            "affected":[{"package":{"ecosystem":"crates.io","name":"smallvec"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0.6.3"},{"fixed":"1.6.1"}]}]}]}"#,
    )
    .unwrap();
    std::fs::write(
        osv.path().join("TEST-2026-0002.json"),
        r#"[{"id":"TEST-2026-0002","summary":"prototype pollution","database_specific":{"severity":"MODERATE"},
            "affected":[{"package":{"ecosystem":"npm","name":"lodash"},"versions":["4.17.20"]}]}]"#,
    )
    .unwrap();
    let repo = TempRepo::new();
    repo.write(
        "Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n",
    );
    repo.write(
        "web/package-lock.json",
        r#"{"lockfileVersion":3,"packages":{"":{"name":"web"},"node_modules/lodash":{"version":"4.17.20"},"node_modules/left-pad":{"version":"1.3.0"}}}"#,
    );
    repo.commit_all("locks");
    let settings = format!("[scan]\nosv = \"{}\"\n", osv.path().display());
    let f = start(repo, &settings).await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    let vulnerable: Vec<_> = report
        .open
        .iter()
        .filter(|x| x.kind == "vulnerable_dependency")
        .collect();
    assert_eq!(vulnerable.len(), 2, "{:#?}", report.open);
    let smallvec = vulnerable
        .iter()
        .find(|x| x.file.as_deref() == Some("Cargo.lock"))
        .unwrap();
    assert!(
        smallvec
            .title
            .starts_with("smallvec 1.6.0 is affected by TEST-2026-0001")
    );
    assert_eq!(smallvec.evidence["fixed_in"][0], "1.6.1");
    assert_eq!(smallvec.severity, "high");
    let lodash = vulnerable
        .iter()
        .find(|x| x.file.as_deref() == Some("web/package-lock.json"))
        .unwrap();
    assert_eq!(lodash.severity, "medium");

    // When the database cannot be read, what it found stays open.
    std::fs::remove_dir_all(osv.path()).unwrap();
    let again = f.orchestrator.scan(user()).await.unwrap();
    assert_eq!(
        again
            .open
            .iter()
            .filter(|x| x.kind == "vulnerable_dependency")
            .count(),
        2,
        "{:?}",
        again.notes
    );

    let broken = start(TempRepo::new(), "[scan]\nosv = \"/nonexistent/osv.json\"\n").await;
    let report = broken.orchestrator.scan(user()).await.unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("advisories were not checked: cannot read")),
        "{:?}",
        report.notes
    );
}

#[tokio::test]
async fn a_block_repeated_with_other_names_is_found_once() {
    let body = |name: &str, var: &str| {
        format!(
            "pub fn {name}(items: &[u32]) -> u32 {{\n    let mut {var} = 0;\n    for item in items {{\n        if *item > 10 {{\n            {var} += item * 2;\n        }} else {{\n            {var} += item + 1;\n        }}\n    }}\n    {var}\n}}\n"
        )
    };
    let repo = TempRepo::new();
    repo.write("src/a.rs", &format!("// first\n{}", body("score", "total")));
    repo.write("src/b.rs", &format!("// second\n\n{}", body("rank", "sum")));
    repo.commit_all("twins");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    let dup: Vec<_> = report
        .open
        .iter()
        .filter(|x| x.kind == "duplicate_code")
        .collect();
    assert_eq!(dup.len(), 1, "{:#?}", dup);
    assert_eq!(
        (dup[0].file.as_deref(), dup[0].line),
        (Some("src/a.rs"), Some(2))
    );
    assert_eq!(dup[0].evidence["other_file"], "src/b.rs");
    assert_eq!(dup[0].evidence["other_line"], 3);
    assert!(dup[0].evidence["lines"].as_u64().unwrap() >= 6);
}

#[tokio::test]
async fn a_test_that_got_slower_across_two_commits_is_reported() {
    let makefile = |slow: &str, pause: &str| {
        format!(
            "test:\n\t@echo '--- PASS: TestFast (0.01s)'\n\t@sleep {pause}\n\t@echo '--- PASS: TestSlow ({slow}s)'\n"
        )
    };
    let repo = TempRepo::new();
    repo.write("Makefile", &makefile("0.20", "0.2"));
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"make test\"\n[scan]\ntest_reruns = 0\n",
    );
    repo.commit_all("fast");
    let f = start(repo, "").await;
    let first = f.orchestrator.scan(user()).await.unwrap();
    assert!(first.open.iter().all(|x| !x.kind.starts_with("slow")));
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.starts_with("slowest tests: TestSlow (0.20s)")),
        "{:?}",
        first.notes
    );
    let before = f.repo.git(&["rev-parse", "HEAD"]);
    f.repo.write("Makefile", &makefile("1.60", "1.6"));
    f.repo.commit_all("slow");
    let second = f.orchestrator.scan(user()).await.unwrap();
    let slow: Vec<_> = second
        .open
        .iter()
        .filter(|x| x.kind == "slow_test")
        .collect();
    assert_eq!(slow.len(), 1, "{:#?}", second.open);
    assert!(
        slow[0]
            .title
            .starts_with("TestSlow got slower: 1.60s, up from a median of 0.20s"),
        "{}",
        slow[0].title
    );
    assert!(
        slow[0].evidence["commits"]
            .as_str()
            .unwrap()
            .starts_with(&before[..12])
    );
    assert!(
        second.open.iter().any(|x| x.kind == "slow_check"),
        "the check as a whole slowed too"
    );
}

#[tokio::test]
async fn junit_reports_name_the_failing_tests() {
    let repo = TempRepo::new();
    repo.write(
        "Makefile",
        "test:\n\t@printf '<testsuite><testcase classname=\"suite\" name=\"t_ok\"/><testcase classname=\"suite\" name=\"t_bad\"><failure>boom</failure></testcase></testsuite>' > report-junit.xml\n\t@exit 1\n",
    );
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"make test\"\n[scan]\ntest_reruns = 0\n",
    );
    repo.commit_all("junit");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(user()).await.unwrap();
    let failing: Vec<&str> = report
        .open
        .iter()
        .filter(|x| x.kind == "failing_test")
        .map(|x| x.title.as_str())
        .collect();
    assert_eq!(failing, ["suite::t_bad fails"], "{:#?}", report.open);
    // Once the test passes, the next scan closes the finding.
    f.repo.write(
        "Makefile",
        "test:\n\t@printf '<testsuite><testcase classname=\"suite\" name=\"t_ok\"/><testcase classname=\"suite\" name=\"t_bad\"/></testsuite>' > report-junit.xml\n",
    );
    f.repo.commit_all("fixed");
    let fixed = f.orchestrator.scan(user()).await.unwrap();
    assert!(
        fixed.open.iter().all(|x| x.kind != "failing_test"),
        "{:#?}",
        fixed.open
    );
    assert_eq!(fixed.changes.fixed, 1);
}

#[tokio::test]
async fn a_test_that_flips_between_scans_at_the_same_commit_is_flaky_with_its_record() {
    let repo = TempRepo::new();
    // Fails when a marker outside the scanned tree exists, and flips it.
    let marker = tempfile::tempdir().unwrap();
    let flip = marker.path().join("flip");
    repo.write(
        "Makefile",
        &format!(
            "test:\n\t@if [ -e {0} ]; then rm {0}; echo 'test t::flips ... FAILED'; exit 1; else touch {0}; echo 'test t::flips ... ok'; fi\n",
            flip.display()
        ),
    );
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"make test\"\n[scan]\ntest_reruns = 0\n",
    );
    repo.commit_all("one run per scan");
    let f = start(repo, "").await;
    let first = f.orchestrator.scan(user()).await.unwrap();
    assert!(first.open.iter().all(|x| x.kind != "flaky_test"));
    let second = f.orchestrator.scan(user()).await.unwrap();
    let flaky: Vec<_> = second
        .open
        .iter()
        .filter(|x| x.kind == "flaky_test")
        .collect();
    assert_eq!(flaky.len(), 1, "{:#?}", second.open);
    assert!(
        flaky[0]
            .title
            .contains("failed 1 of 2 runs at this commit, across scans")
    );
    assert_eq!(flaky[0].evidence["history"]["runs"], 2);
    assert_eq!(flaky[0].evidence["history"]["failed"], 1);
}

#[tokio::test]
async fn an_incremental_scan_looks_only_at_what_changed() {
    let f = start(fixture(), "").await;
    // Without an earlier scan, it is a full scan.
    let full = f.orchestrator.scan_changes(user()).await.unwrap();
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
    let next = f.orchestrator.scan_changes(user()).await.unwrap();
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

    let same = f.orchestrator.scan_changes(user()).await.unwrap();
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
    let report = f.orchestrator.scan(user()).await.unwrap();
    assert!(!report.open.is_empty());
    assert!(
        report.open.iter().all(|x| x.kind == "ci_config"),
        "{:#?}",
        report.open
    );
    assert_eq!(report.detectors, ["ci_config"]);
}
