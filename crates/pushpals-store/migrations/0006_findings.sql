-- Findings of the proactive scanner, one row per stable fingerprint.
CREATE TABLE findings (
    fingerprint  TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    title        TEXT NOT NULL,
    file         TEXT,
    line         INTEGER,
    evidence     TEXT NOT NULL,   -- JSON
    state        TEXT NOT NULL,   -- open | fixed | dismissed
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    reason       TEXT             -- why it was dismissed
);
CREATE INDEX findings_by_state ON findings (state, kind);
