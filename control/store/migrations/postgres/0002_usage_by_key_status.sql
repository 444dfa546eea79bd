-- The PostgreSQL twin of ../0002_usage_by_key_status.sql (its why is there).
CREATE INDEX usage_key_status_ts ON usage(key_id, status, ts);
