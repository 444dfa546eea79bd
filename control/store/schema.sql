-- Generated, do not edit: the schema of a database migrated from zero by
-- control/store/migrations/, as SQLite records it (sqlite_master), each table followed by its
-- indexes and triggers, whitespace normalised. A change to the schema is a new migration; then
-- regenerate this file with `python -m control.store.schema --write`.

CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
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
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE billing_accounts (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    customer_id TEXT UNIQUE,
    payment_method TEXT,
    card_payment_intent TEXT,
    threshold INTEGER,
    recharge_pack TEXT,
    auto_recharge INTEGER NOT NULL DEFAULT 0,
    low INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE clerk_messages (
    svix_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    applied_at REAL NOT NULL
);
CREATE INDEX clerk_messages_applied ON clerk_messages(applied_at);
CREATE TABLE clerk_objects (
    clerk_id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL
);
CREATE TABLE credit_packs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits > 0),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE customer_members (
    clerk_membership_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    clerk_user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX customer_members_org ON customer_members(org_id);
CREATE INDEX customer_members_user ON customer_members(clerk_user_id);
CREATE TABLE customer_users (
    clerk_user_id TEXT PRIMARY KEY,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    analytics_opt_out INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE disputes (
    id TEXT PRIMARY KEY,
    payment_intent TEXT,
    charge_id TEXT,
    org_id TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX disputes_open ON disputes(org_id) WHERE closed_at IS NULL;
CREATE INDEX disputes_payment ON disputes(payment_intent);
CREATE TABLE idempotency_keys (
    org_id TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    request_id TEXT NOT NULL,
    status INTEGER,
    response BLOB,
    created_at REAL NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    number TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    hosted_url TEXT,
    pdf_url TEXT,
    issued_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX invoices_org ON invoices(org_id, issued_at DESC, id DESC);
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    key_id TEXT,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    task_id TEXT,
    reason TEXT,
    actor TEXT,
    created_at REAL NOT NULL,
    payment_id TEXT
);
CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at, amount);
CREATE UNIQUE INDEX ledger_one_charge ON ledger(task_id) WHERE kind='charge';
CREATE UNIQUE INDEX ledger_one_purchase ON ledger(payment_id) WHERE kind = 'purchase';
CREATE INDEX ledger_org ON ledger(org_id, id);
CREATE INDEX ledger_org_kind ON ledger(org_id, kind, created_at, amount);
CREATE TRIGGER ledger_adds_to_total AFTER INSERT ON ledger BEGIN
    INSERT INTO ledger_totals (org_id, total) VALUES (NEW.org_id, NEW.amount) ON CONFLICT (org_id) DO UPDATE SET total = total + excluded.total;
END;
CREATE TRIGGER ledger_entries_are_final BEFORE UPDATE OF org_id, amount ON ledger BEGIN
    SELECT RAISE(ABORT, 'ledger entries are never changed');
END;
CREATE TABLE ledger_totals (
    org_id TEXT PRIMARY KEY,
    total INTEGER NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE model_families (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
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
    closed_at REAL,
    contact_name TEXT,
    processing_objection INTEGER NOT NULL DEFAULT 0,
    external_id TEXT,
    purged_at REAL,
    video_retention_min_days INTEGER NOT NULL DEFAULT 1,
    video_retention_max_days INTEGER NOT NULL DEFAULT 30
);
CREATE UNIQUE INDEX orgs_external_id ON orgs(external_id);
CREATE TABLE orphan_scan (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    scanned_until REAL,
    checked_at REAL,
    error TEXT
);
CREATE TABLE payment_refunds (
    payment_intent TEXT PRIMARY KEY,
    refunded INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('checkout', 'recharge')),
    pack_id TEXT NOT NULL,
    credits INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_intent TEXT UNIQUE,
    ledger_id INTEGER,
    taken_back INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX payments_org ON payments(org_id, created_at DESC, id DESC);
CREATE INDEX payments_recharges_due ON payments(status, updated_at) WHERE kind = 'recharge';
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    org_external_id TEXT
);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);
CREATE INDEX portal_sessions_sub ON portal_sessions(sub);
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    generate_audio INTEGER,
    task_id TEXT UNIQUE,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    settled_at REAL,
    callback_webhook TEXT,
    unit_price TEXT,
    resolution TEXT,
    video_input INTEGER
);
CREATE INDEX reservations_key_held ON reservations(key_id, status, created_at);
CREATE INDEX reservations_org_created ON reservations(org_id, created_at);
CREATE INDEX reservations_org_held ON reservations(org_id, status);
CREATE INDEX reservations_unassigned ON reservations(created_at) WHERE status='held' AND task_id IS NULL;
CREATE TABLE security_events (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    client_ip TEXT,
    key_id TEXT,
    org_id TEXT,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    route TEXT
);
CREATE INDEX security_events_ip ON security_events(client_ip, ts);
CREATE INDEX security_events_key ON security_events(key_id, ts);
CREATE INDEX security_events_org ON security_events(org_id, ts);
CREATE INDEX security_events_ts ON security_events(ts);
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX stripe_events_received ON stripe_events(received_at);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT,
    service_tier TEXT,
    status TEXT NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0,
    charged INTEGER,
    tokens INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    callback_webhook TEXT,
    video_deleted_at REAL,
    unit_price TEXT
);
CREATE INDEX tasks_finished ON tasks(status, finished_at);
CREATE INDEX tasks_org ON tasks(org_id, created_at DESC, id DESC);
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES admin_tokens(id),
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL
);
CREATE INDEX ui_sessions_token ON ui_sessions(token_id);
CREATE TABLE upstream_orphans (
    task_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    org_id TEXT,
    reservation_id TEXT,
    model TEXT,
    status TEXT,
    upstream_created_at REAL,
    found_at REAL NOT NULL
);
CREATE INDEX upstream_orphans_found ON upstream_orphans(outcome, found_at);
CREATE INDEX upstream_orphans_org ON upstream_orphans(org_id);
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
    task_id TEXT,
    limited_by TEXT
);
CREATE INDEX usage_key_status_ts ON usage(key_id, status, ts);
CREATE INDEX usage_org_key_ts ON usage(org_id, key_id, ts DESC, request_id DESC);
CREATE INDEX usage_org_model_ts ON usage(org_id, model, ts DESC, request_id DESC);
CREATE INDEX usage_org_route_ts ON usage(org_id, route, ts DESC, request_id DESC);
CREATE INDEX usage_org_status_ts ON usage(org_id, status, ts DESC, request_id DESC);
CREATE INDEX usage_org_ts ON usage(org_id, ts DESC, request_id DESC);
CREATE INDEX usage_ts ON usage(ts);
CREATE TABLE usage_daily (
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    credits INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    latency_ms_sum REAL NOT NULL,
    PRIMARY KEY (org_id, key_id, day, route, status)
);
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    attempted_at REAL NOT NULL,
    status INTEGER,
    latency_ms REAL,
    error TEXT
);
CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id);
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id DESC);
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
    leased_until REAL,
    UNIQUE (webhook_id, task_id, type)
);
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
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
