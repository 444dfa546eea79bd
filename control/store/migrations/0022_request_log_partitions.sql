-- On PostgreSQL the request log's tables (`usage`, `security_events`) become tables partitioned
-- by day, so that retention drops a day of rows whole instead of deleting them row by row (its
-- twin says how). On SQLite nothing changes: the log is a file of its own
-- (control/store/requestlog.py), and this file's two tables are the empty ones an earlier
-- release left.
SELECT 1;
