"""The gateway's copies of generated videos: the S3-compatible bucket store, signed expiring
links, byte ranges, and the loopback origin that streams them (the store protocol and the
directory store are the shared core's: proxy/core/video_assets.py)."""
