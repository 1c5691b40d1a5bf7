-- Room lifecycle: staff who joined a room through its join action, the disable path's progress (the notice it waits for, the export it waits for, whether history is deleted) and projects being deleted until their room is archived.
-- 0 = no; 1 = joined through the join action (power level 50, kept by member syncs);
-- 2 = left through the leave action (the worker takes them out, then drops the row).
ALTER TABLE matrix_room_members ADD COLUMN staff_joined INTEGER NOT NULL DEFAULT 0;

-- The outbox message (uuid) announcing the disable: nobody is kicked before it is sent
-- or failed. '' = none (the room never existed on the homeserver, or none is wanted).
ALTER TABLE matrix_rooms ADD COLUMN disable_notice TEXT NOT NULL DEFAULT '';
-- The on_deletion history export (uuid) the archive waits for; '' = not created yet.
ALTER TABLE matrix_rooms ADD COLUMN disable_export TEXT NOT NULL DEFAULT '';
-- When the disable started waiting for that export (unix time; it waits 10 minutes at most).
ALTER TABLE matrix_rooms ADD COLUMN disable_export_at INTEGER NOT NULL DEFAULT 0;
-- 1: the disable deletes the room's history exports instead of making one.
ALTER TABLE matrix_rooms ADD COLUMN delete_history INTEGER NOT NULL DEFAULT 0;

-- A project deleted while its room still had to be disabled: kept (deleting_at, unix
-- time) until the room is archived, then deleted with it. 0 = not being deleted.
ALTER TABLE projects ADD COLUMN deleting_at INTEGER NOT NULL DEFAULT 0;
-- The notice its room gets if it is still being created when the deletion is asked.
ALTER TABLE projects ADD COLUMN deletion_notice TEXT NOT NULL DEFAULT '';
