-- The PostgreSQL twin of ../0005_usage_daily.sql (its why is there).
CREATE TABLE usage_daily (
    org_id text NOT NULL,
    key_id text NOT NULL,
    day text NOT NULL,
    route text NOT NULL,
    status bigint NOT NULL,
    requests bigint NOT NULL,
    credits bigint NOT NULL,
    bytes_in bigint NOT NULL,
    bytes_out bigint NOT NULL,
    latency_ms_sum double precision NOT NULL,
    PRIMARY KEY (org_id, key_id, day, route, status),
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX usage_ts ON usage(ts);
