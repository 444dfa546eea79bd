"""The gateway's copies of generated videos: the stores (a directory or an S3-compatible
bucket), signed expiring links, byte ranges, and the loopback origin that streams them."""
