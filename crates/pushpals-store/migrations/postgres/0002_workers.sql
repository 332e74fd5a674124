-- Worker hosts (see SQLite's 0012_workers.sql).
CREATE TABLE workers (
    name          TEXT PRIMARY KEY,
    labels        TEXT NOT NULL,
    enrol_hash    TEXT UNIQUE,
    enrol_expires BIGINT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      TEXT NOT NULL,
    enrolled_at   TEXT,
    token_id      BIGINT,
    cores         BIGINT,
    version       TEXT,
    last_seen     TEXT,
    revoked_at    TEXT
);
