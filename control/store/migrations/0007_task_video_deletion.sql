-- Videos: when a task's copy was deleted; the sweep finds finished tasks by time.
ALTER TABLE tasks ADD COLUMN video_deleted_at REAL;
CREATE INDEX tasks_finished ON tasks(status, finished_at);
