-- Credits: the ledger (one charge per task at most), holds against the balance and
-- spend limits (reservations), and the tasks they were made for.
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    key_id TEXT,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    task_id TEXT,
    reason TEXT,
    actor TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX ledger_org ON ledger(org_id, id);
CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at);
CREATE UNIQUE INDEX ledger_one_charge ON ledger(task_id) WHERE kind='charge';
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    generate_audio INTEGER,
    task_id TEXT UNIQUE,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    settled_at REAL
);
CREATE INDEX reservations_org_held ON reservations(org_id, status);
CREATE INDEX reservations_key_held ON reservations(key_id, status, created_at);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT,
    service_tier TEXT,
    status TEXT NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0,
    charged INTEGER,
    tokens INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX tasks_org ON tasks(org_id, created_at DESC);
