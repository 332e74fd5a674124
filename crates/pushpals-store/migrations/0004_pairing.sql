-- One-time pairing codes for companion devices (only their hashes).
CREATE TABLE pairing_codes (
    id          INTEGER PRIMARY KEY,
    code_hash   TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,  -- unix seconds
    used_at     TEXT
);
