-- Credits bought through Stripe (control/payments/): packs an admin prices, each org's Stripe
-- customer and low-balance settings, each payment (a Checkout Session or an auto-recharge) and
-- what Stripe later gave back of it (refunds, lost disputes), open disputes, invoices, and the
-- ids of the Stripe events applied. Amounts of money are integers in the currency's minor
-- units, as Stripe sends them; credits are micro-credits, as in the ledger.
CREATE TABLE credit_packs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits > 0),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- One row an org, made at its first checkout or low-balance setting. `low` is 1 from the
-- settlement that took the balance under `threshold` until the balance is seen at or over it
-- again: one alert (and one recharge) per crossing.
CREATE TABLE billing_accounts (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    customer_id TEXT UNIQUE,
    payment_method TEXT,
    card_payment_intent TEXT,
    threshold INTEGER,
    recharge_pack TEXT,
    auto_recharge INTEGER NOT NULL DEFAULT 0,
    low INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);

-- A payment grants its pack's credits once (ledger_id; the ledger's own unique index is the
-- guard) and takes back `taken_back` of them as Stripe reports money returned. The pack's
-- figures are copied at checkout: a pack repriced meanwhile does not change what was sold.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('checkout', 'recharge')),
    pack_id TEXT NOT NULL,
    credits INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_intent TEXT UNIQUE,
    ledger_id INTEGER,
    taken_back INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX payments_org ON payments(org_id, created_at DESC, id DESC);
CREATE INDEX payments_recharges_due ON payments(status, updated_at) WHERE kind = 'recharge';

-- What Stripe reports refunded of a payment intent, cumulative, kept even when the event comes
-- before the payment it belongs to is known here (events arrive in any order).
CREATE TABLE payment_refunds (
    payment_intent TEXT PRIMARY KEY,
    refunded INTEGER NOT NULL,
    updated_at REAL NOT NULL
);

-- A dispute suspends its org's creates while open (closed_at NULL); a lost one takes back the
-- disputed share of the payment's credits. org_id is filled once the payment is known.
CREATE TABLE disputes (
    id TEXT PRIMARY KEY,
    payment_intent TEXT,
    charge_id TEXT,
    org_id TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX disputes_open ON disputes(org_id) WHERE closed_at IS NULL;
CREATE INDEX disputes_payment ON disputes(payment_intent);

-- Stripe's invoices of the payments, kept with the ledger (billing records, 7 years).
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    number TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    hosted_url TEXT,
    pdf_url TEXT,
    issued_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX invoices_org ON invoices(org_id, issued_at DESC, id DESC);

-- Each Stripe event applied once, in the transaction that applies it.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX stripe_events_received ON stripe_events(received_at);

-- The ledger entries of payments: kind 'purchase' (credits in) and 'reversal' (taken back),
-- naming their payment; one purchase per payment, whatever events carry it.
ALTER TABLE ledger ADD COLUMN payment_id TEXT;
CREATE UNIQUE INDEX ledger_one_purchase ON ledger(payment_id) WHERE kind = 'purchase';
