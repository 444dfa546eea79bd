"""Usage aggregates: the rollups of request records by hour and dimension (rollup.py: the fold
into a database file of their own, and its background round), the lean per-org counters they
start from (lean.py, counters.py), the time buckets of a query (buckets.py), the reads (reads.py)
and the admin API over them (api.py: `GET /v1/usage`, `GET /v1/orgs/{org}/usage`)."""
