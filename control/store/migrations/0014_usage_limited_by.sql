-- Which of the customer's own limits refused a request (`key` or `org`; NULL for every
-- other answer, a 429 of the upstream's or of a cap other customers fill included): the
-- abuse rule counts only these.
ALTER TABLE usage ADD COLUMN limited_by TEXT;
