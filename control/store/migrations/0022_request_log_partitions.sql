-- On PostgreSQL the request log (`usage`) becomes a table partitioned by day, so that retention
-- drops a day of records whole instead of deleting them row by row (its twin says how). On
-- SQLite nothing changes: the log is a file of its own (control/store/requestlog.py), and this
-- file's `usage` table is the empty one an earlier release left.
SELECT 1;
