-- Retention: the request log's daily rollups (usage_daily; the rollup database, a file of
-- its own since, copies them from here once), and requests found by time for the purge.
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
CREATE INDEX usage_ts ON usage(ts);
