-- The PostgreSQL twin of ../0010_admin_token_last_used.sql (its why is there).
ALTER TABLE admin_tokens ADD COLUMN last_used_at double precision;
