-- Customer portal sessions (/portal/): the SHA-256 of the cookie's random id (never the id
-- itself), the OIDC subject (`sub`) and the name and email its ID token gave, the session's
-- CSRF token, and when it ends: signing out deletes the row, and so does its expiry.
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);
CREATE INDEX portal_sessions_sub ON portal_sessions(sub);
