"""Credits bought with money, through Stripe: packs, checkout, Stripe's events, refunds and
disputes, invoices, low-balance alerts and auto-recharge."""
