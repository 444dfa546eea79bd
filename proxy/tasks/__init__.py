"""A task after its create: watching it end (slots freed, credits settled, webhooks written)
and the signed callback URLs the upstream calls back on."""
