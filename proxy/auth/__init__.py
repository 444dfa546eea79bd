"""Who is calling: the key format and checksum, Argon2id verification with its cache, the
failed-authentication throttle, IP allowlists, and the security events of refused requests."""
