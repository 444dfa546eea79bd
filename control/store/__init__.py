"""The control plane's SQLite: schema and migrations, the shared state and policy publisher,
the credits ledger, the model catalog, Idempotency-Keys, the webhook outbox, admin tokens (the
usage rollups are control/aggregates/)."""
