-- The PostgreSQL twin of ../0017_portal_sessions.sql (its why is there).
CREATE TABLE portal_sessions (
    id_hash text PRIMARY KEY,
    sub text NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    csrf text NOT NULL,
    created_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);
CREATE INDEX portal_sessions_sub ON portal_sessions(sub);
