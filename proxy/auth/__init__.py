"""Who is calling: Argon2id verification with its cache, the failed-authentication throttle, and
the marks of refused requests that become security events (the key format, addresses and the
events' fields are the shared core's: proxy/core/)."""
