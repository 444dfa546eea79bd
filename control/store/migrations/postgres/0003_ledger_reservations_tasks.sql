-- The PostgreSQL twin of ../0003_ledger_reservations_tasks.sql (its why is there).
CREATE TABLE ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    key_id text,
    kind text NOT NULL,
    amount bigint NOT NULL,
    task_id text,
    reason text,
    actor text,
    created_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS (id) STORED UNIQUE
);
CREATE INDEX ledger_org ON ledger(org_id, id);
CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at);
CREATE UNIQUE INDEX ledger_one_charge ON ledger(task_id) WHERE kind='charge';
CREATE TABLE reservations (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    key_id text NOT NULL,
    amount bigint NOT NULL,
    model text NOT NULL,
    tier text NOT NULL,
    generate_audio bigint,
    task_id text UNIQUE,
    status text NOT NULL,
    created_at double precision NOT NULL,
    settled_at double precision,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX reservations_org_held ON reservations(org_id, status);
CREATE INDEX reservations_key_held ON reservations(key_id, status, created_at);
CREATE TABLE tasks (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    key_id text NOT NULL,
    model text,
    service_tier text,
    status text NOT NULL,
    reserved bigint NOT NULL DEFAULT 0,
    charged bigint,
    tokens bigint,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    finished_at double precision,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX tasks_org ON tasks(org_id, created_at DESC);
