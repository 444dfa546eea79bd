-- The PostgreSQL twin of ../0013_ledger_totals.sql (its why is there).
-- The triggers are plpgsql functions of the same effect: each ledger row adds its amount to its
-- org's total in the inserting statement's transaction (the upsert's row lock orders two
-- writers of one org), and an UPDATE naming org_id or amount is refused whatever the values.
CREATE TABLE ledger_totals (
    org_id text PRIMARY KEY,
    total bigint NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
INSERT INTO ledger_totals (org_id, total)
    SELECT org_id, SUM(amount) FROM ledger GROUP BY org_id;
CREATE FUNCTION ledger_adds_to_total() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_totals (org_id, total) VALUES (NEW.org_id, NEW.amount)
    ON CONFLICT (org_id) DO UPDATE SET total = ledger_totals.total + excluded.total;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_adds_to_total AFTER INSERT ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_adds_to_total();
CREATE FUNCTION ledger_entries_are_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are never changed';
END;
$$;
CREATE TRIGGER ledger_entries_are_final BEFORE UPDATE OF org_id, amount ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_are_final();
CREATE INDEX ledger_org_kind ON ledger(org_id, kind, created_at, amount);
DROP INDEX ledger_key_kind;
CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at, amount);
CREATE INDEX reservations_org_created ON reservations(org_id, created_at);
DROP INDEX tasks_org;
CREATE INDEX tasks_org ON tasks(org_id, created_at DESC, id DESC);
