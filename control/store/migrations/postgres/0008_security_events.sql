-- The PostgreSQL twin of ../0008_security_events.sql (its why is there).
CREATE TABLE security_events (
    request_id text PRIMARY KEY,
    ts double precision NOT NULL,
    client_ip text,
    key_id text,
    org_id text,
    reason text NOT NULL,
    status bigint NOT NULL,
    route text,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX security_events_ts ON security_events(ts);
CREATE INDEX security_events_ip ON security_events(client_ip, ts);
CREATE INDEX security_events_org ON security_events(org_id, ts);
CREATE INDEX security_events_key ON security_events(key_id, ts);
