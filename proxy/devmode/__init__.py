"""`run_proxy.py dev`: local dev interception. An unchanged app's Seedance calls are caught by a
mitmproxy regular-mode proxy on loopback and answered by the simulator (or a named target),
shown live, recorded and replayed. Everything here is free of mitmproxy: the process is
assembled in launch/dev.py."""
