"""A task after its create: watching it end (slots freed, credits settled, webhooks written).
The signed callback URLs the upstream calls back on are the shared core's
(proxy/core/callback_tokens.py)."""
