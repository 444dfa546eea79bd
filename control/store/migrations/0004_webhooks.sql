-- Webhooks: the endpoints, the outbox of events, each delivery attempt; holds and tasks
-- remember the endpoint a create asked its callback on.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    url TEXT NOT NULL,
    events TEXT,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_valid_until REAL,
    status TEXT NOT NULL DEFAULT 'enabled',
    disabled_reason TEXT,
    failing_since REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (org_id, url)
);
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
    org_id TEXT NOT NULL,
    task_id TEXT,
    type TEXT NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (webhook_id, task_id, type)
);
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    attempted_at REAL NOT NULL,
    status INTEGER,
    latency_ms REAL,
    error TEXT
);
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id DESC);
ALTER TABLE reservations ADD COLUMN callback_webhook TEXT;
ALTER TABLE tasks ADD COLUMN callback_webhook TEXT;
