-- Autonomy grants: what the person lets happen without asking.
CREATE TABLE grants (
    kind       TEXT PRIMARY KEY,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL
);
