-- The PostgreSQL twin of ../0019_portal_session_org.sql (its why is there).
ALTER TABLE portal_sessions ADD COLUMN org_external_id text;
