-- Customers' own settings (GET/PATCH /v1/me/settings): an org's admins choose how long the
-- gateway keeps its videos, within bounds NextAPI's admins set for the org (the privacy
-- policy's "per your account settings"); each person may opt out of product analytics, which
-- is their own choice, not the org's. The bounds admit today's default of 7 days.
ALTER TABLE orgs ADD COLUMN video_retention_min_days INTEGER NOT NULL DEFAULT 1;
ALTER TABLE orgs ADD COLUMN video_retention_max_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE customer_users ADD COLUMN analytics_opt_out INTEGER NOT NULL DEFAULT 0;
