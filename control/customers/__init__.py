"""The customer's side of the control plane: accounts from Clerk (its webhooks and session
tokens), and on them the customer API (/v1/me) and portal."""
