-- Customer accounts from Clerk (control/customers/): a Clerk organization is an org, found by
-- its Clerk id (`external_id`); its users are members with a role and the name and email the
-- privacy policy lists, nothing more. Clerk's webhooks may arrive twice and out of order:
-- each Svix message is applied once (`clerk_messages`), and each Clerk object keeps the
-- newest `updated_at` applied and, once deleted, a tombstone no late event undoes
-- (`clerk_objects`: ids and times only, so it outlives the erasure of a user's data).
-- `purged_at` marks an org whose account data retention has deleted: an org from Clerk may
-- have no email yet, so an empty email no longer says so.
ALTER TABLE orgs ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX orgs_external_id ON orgs(external_id);
ALTER TABLE orgs ADD COLUMN purged_at REAL;
UPDATE orgs SET purged_at=updated_at WHERE status='closed' AND email='';
CREATE TABLE clerk_messages (
    svix_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    applied_at REAL NOT NULL
);
CREATE INDEX clerk_messages_applied ON clerk_messages(applied_at);
CREATE TABLE clerk_objects (
    clerk_id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL
);
CREATE TABLE customer_users (
    clerk_user_id TEXT PRIMARY KEY,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE customer_members (
    clerk_membership_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    clerk_user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX customer_members_user ON customer_members(clerk_user_id);
CREATE INDEX customer_members_org ON customer_members(org_id);
