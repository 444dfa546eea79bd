-- Data-subject rights: an org's contact name and its objection to processing.
ALTER TABLE orgs ADD COLUMN contact_name TEXT;
ALTER TABLE orgs ADD COLUMN processing_objection INTEGER NOT NULL DEFAULT 0;
