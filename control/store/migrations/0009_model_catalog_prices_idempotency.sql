-- The model catalog (seeded once from config/models.toml); the unit price each hold was
-- made at, so a task is charged at it whatever the catalog says later; Idempotency-Key.
CREATE TABLE model_families (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
ALTER TABLE reservations ADD COLUMN unit_price TEXT;
ALTER TABLE reservations ADD COLUMN resolution TEXT;
ALTER TABLE reservations ADD COLUMN video_input INTEGER;
ALTER TABLE tasks ADD COLUMN unit_price TEXT;
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
