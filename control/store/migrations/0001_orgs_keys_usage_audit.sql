-- Orgs and their API keys, admin tokens, the request log (usage), the audit trail, and
-- meta (named values: the policy version, the epoch, whether the catalog was seeded).
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    allowed_ips TEXT NOT NULL DEFAULT '[]',
    rate_limit TEXT NOT NULL DEFAULT '{}',
    spend_limit TEXT,
    video_retention_days INTEGER NOT NULL DEFAULT 7,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    closed_at REAL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_valid_until REAL,
    status TEXT NOT NULL DEFAULT 'active',
    allowed_ips TEXT NOT NULL DEFAULT '[]',
    models TEXT,
    rate_limit TEXT NOT NULL DEFAULT '{}',
    spend_limit TEXT,
    expires_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    revoked_at REAL,
    rotated_at REAL
);
CREATE INDEX api_keys_org ON api_keys(org_id);
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE usage (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    org_id TEXT,
    key_id TEXT,
    method TEXT NOT NULL,
    route TEXT,
    status INTEGER NOT NULL,
    latency_ms REAL,
    upstream_latency_ms REAL,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    bytes_out INTEGER NOT NULL DEFAULT 0,
    credits INTEGER NOT NULL DEFAULT 0,
    model TEXT,
    task_id TEXT
);
CREATE INDEX usage_org_ts ON usage(org_id, ts DESC, request_id DESC);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
