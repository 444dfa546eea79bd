"""What a create costs and who pays: the hold priced from the catalog, the wallet protocol the
control plane's ledger answers, and Idempotency-Key so that a retried create is paid once."""
