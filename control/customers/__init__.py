"""The customer's side of the control plane: accounts from Clerk (its webhooks: webhook.py,
the events read: events.py, the orgs, members and people they make: accounts.py; its session
tokens: tokens.py), and on them, later, the customer API (/v1/me) and portal."""
