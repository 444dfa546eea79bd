-- Tasks the upstream made for creates the edge never answered (control/jobs/orphans.py):
-- each once, given to its hold (`charged`) or billed to no one (`unmatched`, `ambiguous`);
-- and how far the scans have listed the upstream. The holds they look for: held, no task.
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
CREATE TABLE orphan_scan (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    scanned_until REAL,
    checked_at REAL,
    error TEXT
);
CREATE INDEX reservations_unassigned ON reservations(created_at)
    WHERE status='held' AND task_id IS NULL;
