-- Admin tokens: when each was last used (kept in memory, written on list and close).
ALTER TABLE admin_tokens ADD COLUMN last_used_at REAL;
