-- The PostgreSQL twin of ../0006_org_contact_and_objection.sql (its why is there).
ALTER TABLE orgs ADD COLUMN contact_name text;
ALTER TABLE orgs ADD COLUMN processing_objection bigint NOT NULL DEFAULT 0;
