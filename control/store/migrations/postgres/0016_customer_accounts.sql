-- The PostgreSQL twin of ../0016_customer_accounts.sql (its why is there).
ALTER TABLE orgs ADD COLUMN external_id text;
CREATE UNIQUE INDEX orgs_external_id ON orgs(external_id);
ALTER TABLE orgs ADD COLUMN purged_at double precision;
UPDATE orgs SET purged_at=updated_at WHERE status='closed' AND email='';
CREATE TABLE clerk_messages (
    svix_id text PRIMARY KEY,
    event_type text NOT NULL,
    applied_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX clerk_messages_applied ON clerk_messages(applied_at);
CREATE TABLE clerk_objects (
    clerk_id text PRIMARY KEY,
    object text NOT NULL,
    updated_at double precision NOT NULL,
    deleted_at double precision,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE customer_users (
    clerk_user_id text PRIMARY KEY,
    first_name text,
    last_name text,
    email text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE customer_members (
    clerk_membership_id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id),
    clerk_user_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX customer_members_user ON customer_members(clerk_user_id);
CREATE INDEX customer_members_org ON customer_members(org_id);
