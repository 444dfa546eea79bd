"""One usage record per request: built from the request's context, made durable in an
append-only spool, and shipped in batches to the control plane's SQLite."""
