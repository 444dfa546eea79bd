-- The PostgreSQL twin of ../0015_upstream_orphans.sql (its why is there).
CREATE TABLE upstream_orphans (
    task_id text PRIMARY KEY,
    outcome text NOT NULL,
    org_id text,
    reservation_id text,
    model text,
    status text,
    upstream_created_at double precision,
    found_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX upstream_orphans_found ON upstream_orphans(outcome, found_at);
CREATE INDEX upstream_orphans_org ON upstream_orphans(org_id);
CREATE TABLE orphan_scan (
    id bigint PRIMARY KEY CHECK (id = 1),
    scanned_until double precision,
    checked_at double precision,
    error text,
    rowid bigint GENERATED ALWAYS AS (id) STORED UNIQUE
);
CREATE INDEX reservations_unassigned ON reservations(created_at)
    WHERE status='held' AND task_id IS NULL;
