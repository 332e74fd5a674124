-- How long the scanner's checks and tests took, per scanned commit.
CREATE TABLE durations (
    id       INTEGER PRIMARY KEY,
    subject  TEXT NOT NULL,   -- "check:<command>" or "test:<name>"
    commit_sha TEXT NOT NULL,
    seconds  REAL NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX durations_by_subject ON durations (subject, id);
