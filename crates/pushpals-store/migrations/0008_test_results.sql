-- Each test's outcomes per scan, for flake rates across scans.
CREATE TABLE test_results (
    id         INTEGER PRIMARY KEY,
    test       TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    passed     INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX test_results_by_test ON test_results (test, commit_sha);
