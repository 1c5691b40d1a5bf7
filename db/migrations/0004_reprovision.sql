-- Provisioning: reprovision runs (progress is counted per run); a room's notice (e.g. created without its alias) and when a createRoom was sent without its result recorded (a crash may have left that room behind).
CREATE TABLE reprovisions (
    id         INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    rooms      INTEGER NOT NULL,
    users      INTEGER NOT NULL
);

ALTER TABLE matrix_rooms ADD COLUMN notice TEXT NOT NULL DEFAULT '';
ALTER TABLE matrix_rooms ADD COLUMN reprovision_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE matrix_rooms ADD COLUMN create_started_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE matrix_user_profiles ADD COLUMN reprovision_id INTEGER NOT NULL DEFAULT 0;
