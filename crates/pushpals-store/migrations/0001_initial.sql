-- Tasks, events, approvals, blobs and API tokens.
-- Types are kept to TEXT/INTEGER/BLOB so that a PostgreSQL schema can mirror it.
CREATE TABLE tasks (
    id            TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    command       TEXT,
    state         TEXT NOT NULL,
    base_commit   TEXT,
    branch        TEXT NOT NULL,
    worktree_path TEXT,
    reason        TEXT,
    commit_sha    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX tasks_by_state ON tasks (state);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    task_id   TEXT,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX events_by_task ON events (task_id, id);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES tasks (id),
    action       TEXT NOT NULL,
    state        TEXT NOT NULL,
    summary      TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_at   TEXT,
    decided_by   TEXT,
    reason       TEXT
);
CREATE INDEX approvals_by_task ON approvals (task_id, state);

CREATE TABLE blobs (
    hash    TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    content BLOB NOT NULL
);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
