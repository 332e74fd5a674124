-- Worker hosts: each named by an admin with the labels it offers, given a
-- one-time enrolment token (only its hash, until it is used or expires),
-- then holding a token of the `worker` scope (`token_id`) that it reports
-- with (`last_seen`, its cores and version).
CREATE TABLE workers (
    name          TEXT PRIMARY KEY,
    labels        TEXT NOT NULL,      -- JSON array of strings
    enrol_hash    TEXT UNIQUE,        -- NULL once used
    enrol_expires INTEGER NOT NULL,   -- unix seconds
    added_by      TEXT NOT NULL,
    added_at      TEXT NOT NULL,
    enrolled_at   TEXT,
    token_id      INTEGER,
    cores         INTEGER,
    version       TEXT,
    last_seen     TEXT,
    revoked_at    TEXT
);
