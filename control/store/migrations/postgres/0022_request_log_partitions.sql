-- The PostgreSQL twin of ../0022_request_log_partitions.sql: the request log's two tables,
-- `usage` and `security_events`, each partitioned by the UTC day of `ts`, one partition a day
-- named usage_YYYYMMDD (security_events_YYYYMMDD; control/store/partitions.py makes each before
-- its first rows arrive, and retention drops a day once it is past its period, and for usage
-- once folded into the rollups), and usage_default (security_events_default) for a time outside
-- any made (a record that came after its day was dropped, a clock far off).
--
-- What a partitioned table asks of the schema: a unique key must hold the partition key, so the
-- key is (request_id, ts): a record sent again is the same record (its ts too), so a resent
-- spool is still stored once; and it cannot have an identity column (PostgreSQL 15), so rowid
-- is a sequence's, indexed but not unique (the sequence hands each number out once).
--
-- The rows of the table as it was are copied, rowids and all (the rollups' watermark counts in
-- them); the keys and indexes are made after, once each partition has its rows.
ALTER TABLE usage DROP CONSTRAINT usage_pkey, DROP CONSTRAINT usage_rowid_key;
DROP INDEX usage_org_ts, usage_key_status_ts, usage_ts, usage_org_key_ts, usage_org_status_ts,
    usage_org_model_ts, usage_org_route_ts;
ALTER TABLE usage RENAME TO usage_unpartitioned;
CREATE SEQUENCE usage_rowids;
CREATE TABLE usage (
    request_id text NOT NULL,
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
    limited_by text,
    rowid bigint NOT NULL DEFAULT nextval('usage_rowids')
) PARTITION BY RANGE (ts);
ALTER SEQUENCE usage_rowids OWNED BY usage.rowid;
DO $$
DECLARE
    day bigint;
BEGIN
    FOR day IN
        SELECT DISTINCT floor(ts / 86400)::bigint FROM usage_unpartitioned
        WHERE ts >= 0 AND ts < 253402300800  -- years 1970 to 9999: a name of eight digits
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF usage FOR VALUES FROM (%s) TO (%s)',
            'usage_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
            day * 86400,
            (day + 1) * 86400
        );
    END LOOP;
END
$$;
CREATE TABLE usage_default PARTITION OF usage DEFAULT;
INSERT INTO usage (request_id, ts, org_id, key_id, method, route, status, latency_ms,
    upstream_latency_ms, bytes_in, bytes_out, credits, model, task_id, limited_by, rowid)
SELECT request_id, ts, org_id, key_id, method, route, status, latency_ms,
    upstream_latency_ms, bytes_in, bytes_out, credits, model, task_id, limited_by, rowid
FROM usage_unpartitioned;
SELECT setval('usage_rowids', COALESCE(MAX(rowid), 1), MAX(rowid) IS NOT NULL)
FROM usage_unpartitioned;
DROP TABLE usage_unpartitioned;
ALTER TABLE usage ADD PRIMARY KEY (request_id, ts);
CREATE INDEX usage_rowid ON usage(rowid);
CREATE INDEX usage_org_ts ON usage(org_id, ts DESC, request_id DESC);
CREATE INDEX usage_key_status_ts ON usage(key_id, status, ts);
CREATE INDEX usage_ts ON usage(ts);
CREATE INDEX usage_org_key_ts ON usage(org_id, key_id, ts DESC, request_id DESC);
CREATE INDEX usage_org_status_ts ON usage(org_id, status, ts DESC, request_id DESC);
CREATE INDEX usage_org_model_ts ON usage(org_id, model, ts DESC, request_id DESC);
CREATE INDEX usage_org_route_ts ON usage(org_id, route, ts DESC, request_id DESC);

-- security_events, the same way.
ALTER TABLE security_events DROP CONSTRAINT security_events_pkey,
    DROP CONSTRAINT security_events_rowid_key;
DROP INDEX security_events_ts, security_events_ip, security_events_org, security_events_key;
ALTER TABLE security_events RENAME TO security_events_unpartitioned;
CREATE SEQUENCE security_events_rowids;
CREATE TABLE security_events (
    request_id text NOT NULL,
    ts double precision NOT NULL,
    client_ip text,
    key_id text,
    org_id text,
    reason text NOT NULL,
    status bigint NOT NULL,
    route text,
    rowid bigint NOT NULL DEFAULT nextval('security_events_rowids')
) PARTITION BY RANGE (ts);
ALTER SEQUENCE security_events_rowids OWNED BY security_events.rowid;
DO $$
DECLARE
    day bigint;
BEGIN
    FOR day IN
        SELECT DISTINCT floor(ts / 86400)::bigint FROM security_events_unpartitioned
        WHERE ts >= 0 AND ts < 253402300800
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF security_events FOR VALUES FROM (%s) TO (%s)',
            'security_events_'
                || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
            day * 86400,
            (day + 1) * 86400
        );
    END LOOP;
END
$$;
CREATE TABLE security_events_default PARTITION OF security_events DEFAULT;
INSERT INTO security_events (request_id, ts, client_ip, key_id, org_id, reason, status, route,
    rowid)
SELECT request_id, ts, client_ip, key_id, org_id, reason, status, route, rowid
FROM security_events_unpartitioned;
SELECT setval('security_events_rowids', COALESCE(MAX(rowid), 1), MAX(rowid) IS NOT NULL)
FROM security_events_unpartitioned;
DROP TABLE security_events_unpartitioned;
ALTER TABLE security_events ADD PRIMARY KEY (request_id, ts);
CREATE INDEX security_events_rowid ON security_events(rowid);
CREATE INDEX security_events_ts ON security_events(ts);
CREATE INDEX security_events_ip ON security_events(client_ip, ts);
CREATE INDEX security_events_org ON security_events(org_id, ts);
CREATE INDEX security_events_key ON security_events(key_id, ts);
