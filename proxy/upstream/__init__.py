"""Talking to Seedance: a small keep-alive HTTP/1.1 pool and the client that relays requests
with NextAPI's key and turns upstream failures into the edge's error envelope."""
