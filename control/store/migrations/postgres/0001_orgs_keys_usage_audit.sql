-- The PostgreSQL twin of ../0001_orgs_keys_usage_audit.sql (its why is there).
CREATE TABLE orgs (
    id text PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    status text NOT NULL DEFAULT 'active',
    allowed_ips text NOT NULL DEFAULT '[]',
    rate_limit text NOT NULL DEFAULT '{}',
    spend_limit text,
    video_retention_days bigint NOT NULL DEFAULT 7,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    closed_at double precision,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id),
    name text NOT NULL,
    environment text NOT NULL,
    secret_hash text NOT NULL,
    previous_secret_hash text,
    previous_valid_until double precision,
    status text NOT NULL DEFAULT 'active',
    allowed_ips text NOT NULL DEFAULT '[]',
    models text,
    rate_limit text NOT NULL DEFAULT '{}',
    spend_limit text,
    expires_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    revoked_at double precision,
    rotated_at double precision,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX api_keys_org ON api_keys(org_id);
CREATE TABLE admin_tokens (
    id text PRIMARY KEY,
    name text NOT NULL,
    token_hash text NOT NULL,
    scopes text NOT NULL,
    source text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE usage (
    request_id text PRIMARY KEY,
    ts double precision NOT NULL,
    org_id text,
    key_id text,
    method text NOT NULL,
    route text,
    status bigint NOT NULL,
    latency_ms double precision,
    upstream_latency_ms double precision,
    bytes_in bigint NOT NULL DEFAULT 0,
    bytes_out bigint NOT NULL DEFAULT 0,
    credits bigint NOT NULL DEFAULT 0,
    model text,
    task_id text,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX usage_org_ts ON usage(org_id, ts DESC, request_id DESC);
CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text,
    detail text NOT NULL DEFAULT '{}',
    rowid bigint GENERATED ALWAYS AS (id) STORED UNIQUE
);
CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
