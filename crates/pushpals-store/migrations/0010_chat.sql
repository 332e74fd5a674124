-- Each paired device's chat with the orchestrator, so its history follows
-- it across reloads and restarts. A convenience copy, not the record: what
-- a message did is in the event log.
CREATE TABLE chat_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    at TEXT NOT NULL,
    who TEXT NOT NULL CHECK (who IN ('me', 'them')),
    text TEXT NOT NULL
);
CREATE INDEX chat_lines_by_device ON chat_lines (device, id);
