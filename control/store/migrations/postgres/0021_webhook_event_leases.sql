-- The PostgreSQL twin of ../0021_webhook_event_leases.sql (its why is there).
ALTER TABLE webhook_events ADD COLUMN leased_until double precision;
