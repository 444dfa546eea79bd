-- The PostgreSQL twin of ../0012_request_log_filter_indexes.sql (its why is there).
CREATE INDEX usage_org_key_ts ON usage(org_id, key_id, ts DESC, request_id DESC);
CREATE INDEX usage_org_status_ts ON usage(org_id, status, ts DESC, request_id DESC);
CREATE INDEX usage_org_model_ts ON usage(org_id, model, ts DESC, request_id DESC);
CREATE INDEX usage_org_route_ts ON usage(org_id, route, ts DESC, request_id DESC);
CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id);
