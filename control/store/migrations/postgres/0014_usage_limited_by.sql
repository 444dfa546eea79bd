-- The PostgreSQL twin of ../0014_usage_limited_by.sql (its why is there).
ALTER TABLE usage ADD COLUMN limited_by text;
