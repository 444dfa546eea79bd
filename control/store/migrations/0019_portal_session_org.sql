-- The organization a portal session acts in, for a person who is a member of several: chosen
-- with the portal's switcher (NULL: their newest membership, as before).
ALTER TABLE portal_sessions ADD COLUMN org_external_id TEXT;
