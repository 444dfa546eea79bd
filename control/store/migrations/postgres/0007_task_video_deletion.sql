-- The PostgreSQL twin of ../0007_task_video_deletion.sql (its why is there).
ALTER TABLE tasks ADD COLUMN video_deleted_at double precision;
CREATE INDEX tasks_finished ON tasks(status, finished_at);
