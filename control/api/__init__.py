"""The admin REST API, one module per resource (the route table is control/app.py), and the
msgpack endpoints edges apart use for policy, usage and the wallet."""
