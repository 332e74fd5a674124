-- Many repositories on one server. Rows written before this version belong
-- to the one repository that server served: their `repo` is '' until the
-- first repository is registered, which adopts them (`adopt_unowned`).
CREATE TABLE repositories (
    name      TEXT PRIMARY KEY,
    path      TEXT NOT NULL UNIQUE,  -- the checkout tasks branch from
    origin    TEXT,                  -- the URL it was cloned from (no credentials); NULL: a local checkout used in place
    branch    TEXT,                  -- the base branch asked for; NULL: the remote's default
    home      TEXT NOT NULL,         -- its directory in the data dir (clone, caches, overlays)
    added_by  TEXT NOT NULL,
    added_at  TEXT NOT NULL
);

ALTER TABLE tasks ADD COLUMN repo TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_by_repo ON tasks (repo, state);

-- Grants are per repository: rebuilt with the repository in the key.
CREATE TABLE grants_by_repo (
    repo       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (repo, kind)
);
INSERT INTO grants_by_repo (repo, kind, granted_by, granted_at)
    SELECT '', kind, granted_by, granted_at FROM grants;
DROP TABLE grants;
ALTER TABLE grants_by_repo RENAME TO grants;

-- Findings are per repository: two repositories may hold the same file.
CREATE TABLE findings_by_repo (
    repo         TEXT NOT NULL DEFAULT '',
    fingerprint  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    title        TEXT NOT NULL,
    file         TEXT,
    line         INTEGER,
    evidence     TEXT NOT NULL,
    state        TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    reason       TEXT,
    PRIMARY KEY (repo, fingerprint)
);
INSERT INTO findings_by_repo (repo, fingerprint, kind, severity, title, file, line, evidence,
                              state, first_seen, last_seen, reason)
    SELECT '', fingerprint, kind, severity, title, file, line, evidence, state, first_seen,
           last_seen, reason FROM findings;
DROP TABLE findings;
ALTER TABLE findings_by_repo RENAME TO findings;
CREATE INDEX findings_by_state ON findings (repo, state, kind);

ALTER TABLE durations ADD COLUMN repo TEXT NOT NULL DEFAULT '';
DROP INDEX durations_by_subject;
CREATE INDEX durations_by_subject ON durations (repo, subject, id);
ALTER TABLE test_results ADD COLUMN repo TEXT NOT NULL DEFAULT '';
DROP INDEX test_results_by_test;
CREATE INDEX test_results_by_test ON test_results (repo, test, commit_sha);
