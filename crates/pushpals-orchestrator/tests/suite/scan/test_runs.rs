//! Failing, flaky and slow tests found by running the repository's test
//! check, from runners' output and JUnit reports.

use crate::suite::support::{start, user};
use pushpals_test_support::TempRepo;

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
    let report = f.orchestrator.scan(None, user()).await.unwrap();
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
    let report = f.orchestrator.scan(None, user()).await.unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("policy says ask")),
        "{:?}",
        report.notes
    );
    let plain = start(TempRepo::new(), "").await;
    let report = plain.orchestrator.scan(None, user()).await.unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("no test check")),
        "{:?}",
        report.notes
    );
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
    let first = f.orchestrator.scan(None, user()).await.unwrap();
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
    let second = f.orchestrator.scan(None, user()).await.unwrap();
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
    let report = f.orchestrator.scan(None, user()).await.unwrap();
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
    let fixed = f.orchestrator.scan(None, user()).await.unwrap();
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
    let first = f.orchestrator.scan(None, user()).await.unwrap();
    assert!(first.open.iter().all(|x| x.kind != "flaky_test"));
    let second = f.orchestrator.scan(None, user()).await.unwrap();
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
async fn a_test_check_whose_program_is_missing_is_a_broken_check_not_a_failing_test() {
    // A program policy allows that this machine does not have.
    assert!(
        std::process::Command::new("hadolint")
            .arg("--version")
            .output()
            .is_err(),
        "this test needs a machine without hadolint"
    );
    let repo = TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\ntest = \"hadolint Dockerfile\"\n",
    );
    repo.commit_all("a check whose program is missing");
    let f = start(repo, "").await;
    let report = f.orchestrator.scan(None, user()).await.unwrap();
    assert!(
        report.open.iter().all(|x| x.kind != "failing_test"),
        "{:#?}",
        report.open
    );
    let broken: Vec<_> = report
        .open
        .iter()
        .filter(|x| x.kind == "broken_check")
        .collect();
    assert_eq!(broken.len(), 1, "{:#?}", report);
    assert!(
        broken[0].title.contains("cannot run"),
        "{}",
        broken[0].title
    );
    assert!(broken[0].title.contains("hadolint"), "{}", broken[0].title);
}
