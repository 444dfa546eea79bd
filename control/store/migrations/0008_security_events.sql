-- Security events (failed authentications, refused addresses) with the client address, kept
-- 90 days against fraud and abuse. The request id makes a replayed spool change nothing.
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
CREATE INDEX security_events_ts ON security_events(ts);
CREATE INDEX security_events_ip ON security_events(client_ip, ts);
CREATE INDEX security_events_org ON security_events(org_id, ts);
CREATE INDEX security_events_key ON security_events(key_id, ts);
