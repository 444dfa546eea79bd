-- Each org's balance, kept as the ledger is written (by a trigger, in the same transaction):
-- a hold or a balance read is one row, not a sum over years of charges, and the purge of
-- ledger entries past their retention leaves it as it was. Entries are never changed.
-- Indexes, so that no read of one org sorts or sums all its rows: its (or a key's) charges
-- over a spend limit's window, off the index alone; its newest holds; its newest tasks (ties
-- by id, as the pages read them).
CREATE TABLE ledger_totals (org_id TEXT PRIMARY KEY, total INTEGER NOT NULL);
INSERT INTO ledger_totals (org_id, total)
    SELECT org_id, SUM(amount) FROM ledger GROUP BY org_id;
CREATE TRIGGER ledger_adds_to_total AFTER INSERT ON ledger BEGIN
    INSERT INTO ledger_totals (org_id, total) VALUES (NEW.org_id, NEW.amount)
    ON CONFLICT (org_id) DO UPDATE SET total = total + excluded.total;
END;
CREATE TRIGGER ledger_entries_are_final BEFORE UPDATE OF org_id, amount ON ledger BEGIN
    SELECT RAISE(ABORT, 'ledger entries are never changed');
END;
CREATE INDEX ledger_org_kind ON ledger(org_id, kind, created_at, amount);
DROP INDEX ledger_key_kind;
CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at, amount);
CREATE INDEX reservations_org_created ON reservations(org_id, created_at);
DROP INDEX tasks_org;
CREATE INDEX tasks_org ON tasks(org_id, created_at DESC, id DESC);
