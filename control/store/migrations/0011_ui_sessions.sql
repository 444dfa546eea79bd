-- Dashboard sessions: the SHA-256 of the cookie's random id, never the admin token itself.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES admin_tokens(id),
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL
);
CREATE INDEX ui_sessions_token ON ui_sessions(token_id);
