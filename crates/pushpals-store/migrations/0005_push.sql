-- Web Push subscriptions of paired browsers.
CREATE TABLE push_subscriptions (
    id          INTEGER PRIMARY KEY,
    token_name  TEXT NOT NULL,
    endpoint    TEXT NOT NULL UNIQUE,
    p256dh      TEXT NOT NULL,
    auth        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
