-- A key's requests by status over time: the automatic suspension of a key that keeps
-- hitting its rate limits counts them.
CREATE INDEX usage_key_status_ts ON usage(key_id, status, ts);
