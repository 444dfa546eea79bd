-- The PostgreSQL twin of ../0009_model_catalog_prices_idempotency.sql (its why is there).
CREATE TABLE model_families (
    name text PRIMARY KEY,
    spec text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
ALTER TABLE reservations ADD COLUMN unit_price text;
ALTER TABLE reservations ADD COLUMN resolution text;
ALTER TABLE reservations ADD COLUMN video_input bigint;
ALTER TABLE tasks ADD COLUMN unit_price text;
CREATE TABLE idempotency_keys (
    org_id text NOT NULL,
    key text NOT NULL,
    body_hash text NOT NULL,
    request_id text NOT NULL,
    status bigint,
    response bytea,
    created_at double precision NOT NULL,
    PRIMARY KEY (org_id, key),
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
