-- One row that readiness probes rewrite: proof that the database takes a
-- write through the single writer.
CREATE TABLE readiness (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
);
