-- The PostgreSQL twin of ../0020_payments.sql (its why is there).
CREATE TABLE credit_packs (
    id text PRIMARY KEY,
    name text NOT NULL,
    credits bigint NOT NULL CHECK (credits > 0),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    active bigint NOT NULL DEFAULT 1,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE billing_accounts (
    org_id text PRIMARY KEY REFERENCES orgs(id),
    customer_id text UNIQUE,
    payment_method text,
    card_payment_intent text,
    threshold bigint,
    recharge_pack text,
    auto_recharge bigint NOT NULL DEFAULT 0,
    low bigint NOT NULL DEFAULT 0,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE payments (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('checkout', 'recharge')),
    pack_id text NOT NULL,
    credits bigint NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    payment_intent text UNIQUE,
    ledger_id bigint,
    taken_back bigint NOT NULL DEFAULT 0,
    attempts bigint NOT NULL DEFAULT 0,
    error text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX payments_org ON payments(org_id, created_at DESC, id DESC);
CREATE INDEX payments_recharges_due ON payments(status, updated_at) WHERE kind = 'recharge';
CREATE TABLE payment_refunds (
    payment_intent text PRIMARY KEY,
    refunded bigint NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE disputes (
    id text PRIMARY KEY,
    payment_intent text,
    charge_id text,
    org_id text,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    opened_at double precision NOT NULL,
    closed_at double precision,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX disputes_open ON disputes(org_id) WHERE closed_at IS NULL;
CREATE INDEX disputes_payment ON disputes(payment_intent);
CREATE TABLE invoices (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    number text,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    hosted_url text,
    pdf_url text,
    issued_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX invoices_org ON invoices(org_id, issued_at DESC, id DESC);
CREATE TABLE stripe_events (
    id text PRIMARY KEY,
    type text NOT NULL,
    outcome text NOT NULL,
    received_at double precision NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX stripe_events_received ON stripe_events(received_at);
ALTER TABLE ledger ADD COLUMN payment_id text;
CREATE UNIQUE INDEX ledger_one_purchase ON ledger(payment_id) WHERE kind = 'purchase';
