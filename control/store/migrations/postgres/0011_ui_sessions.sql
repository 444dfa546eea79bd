-- The PostgreSQL twin of ../0011_ui_sessions.sql (its why is there).
CREATE TABLE ui_sessions (
    id_hash text PRIMARY KEY,
    token_id text NOT NULL REFERENCES admin_tokens(id),
    csrf text NOT NULL,
    created_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX ui_sessions_token ON ui_sessions(token_id);
