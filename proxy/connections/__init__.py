"""Client connections at the edge's listener: what a request head must look like to be read at
all (`framing`, free of mitmproxy), and mitmproxy's HTTP/1 server layer with those rules and the
connection time limits (`http1server`, the one part that reaches into mitmproxy's internals).
`addons/connections.py` installs the layer on every client connection."""
