-- The PostgreSQL twin of ../0004_webhooks.sql (its why is there).
CREATE TABLE webhooks (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id),
    url text NOT NULL,
    events text,
    secret text NOT NULL,
    previous_secret text,
    previous_valid_until double precision,
    status text NOT NULL DEFAULT 'enabled',
    disabled_reason text,
    failing_since double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    UNIQUE (org_id, url),
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE webhook_events (
    id text PRIMARY KEY,
    webhook_id text NOT NULL REFERENCES webhooks(id),
    org_id text NOT NULL,
    task_id text,
    type text NOT NULL,
    payload bytea NOT NULL,
    status text NOT NULL,
    attempts bigint NOT NULL DEFAULT 0,
    next_attempt_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    UNIQUE (webhook_id, task_id, type),
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
CREATE TABLE webhook_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL,
    webhook_id text NOT NULL,
    attempted_at double precision NOT NULL,
    status bigint,
    latency_ms double precision,
    error text,
    rowid bigint GENERATED ALWAYS AS (id) STORED UNIQUE
);
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id DESC);
ALTER TABLE reservations ADD COLUMN callback_webhook text;
ALTER TABLE tasks ADD COLUMN callback_webhook text;
