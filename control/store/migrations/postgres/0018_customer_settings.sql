-- The PostgreSQL twin of ../0018_customer_settings.sql (its why is there).
ALTER TABLE orgs ADD COLUMN video_retention_min_days bigint NOT NULL DEFAULT 1;
ALTER TABLE orgs ADD COLUMN video_retention_max_days bigint NOT NULL DEFAULT 30;
ALTER TABLE customer_users ADD COLUMN analytics_opt_out bigint NOT NULL DEFAULT 0;
