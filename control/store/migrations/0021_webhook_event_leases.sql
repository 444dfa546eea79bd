-- An outbox event being sent is leased to the control plane that claimed it, until
-- `leased_until` (NULL: nobody is sending it): control planes sharing one database send each
-- attempt once, and an event whose claimant died is due again when the lease runs out.
ALTER TABLE webhook_events ADD COLUMN leased_until REAL;
