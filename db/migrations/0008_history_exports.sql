-- History exports: one row per export of a room's history (manual, periodic, before the room closes), its state, counts and encrypted files.
CREATE TABLE history_exports (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT    NOT NULL UNIQUE,
    -- NULL once the room's record is deleted: an export is the record of a room that
    -- ended, so it outlives the room row and keeps the room's ids and name below.
    room_pk       INTEGER REFERENCES matrix_rooms(id) ON DELETE SET NULL,
    room_id       TEXT    NOT NULL DEFAULT '',
    room_name     TEXT    NOT NULL DEFAULT '',
    export_type   TEXT    NOT NULL CHECK (export_type IN ('manual', 'periodic', 'on_deletion')),
    state         TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'exporting', 'completed', 'failed')),
    message_count INTEGER NOT NULL DEFAULT 0,
    media_count   INTEGER NOT NULL DEFAULT 0,
    error_message TEXT    NOT NULL DEFAULT '',
    -- File names inside the export folder ('' = none) and their plaintext sizes.
    export_file   TEXT    NOT NULL DEFAULT '',
    export_size   INTEGER NOT NULL DEFAULT 0,
    media_file    TEXT    NOT NULL DEFAULT '',
    media_size    INTEGER NOT NULL DEFAULT 0,
    -- Id (public fingerprint) of the master key that wrapped the files' keys; the
    -- wrapped keys themselves are in the files' headers.
    key_id        TEXT    NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    started_at    INTEGER,
    completed_at  INTEGER,
    created_at    INTEGER NOT NULL
);
-- At most one waiting and one running export per room.
CREATE UNIQUE INDEX history_exports_pending ON history_exports(room_pk) WHERE state = 'pending';
CREATE UNIQUE INDEX history_exports_running ON history_exports(room_pk) WHERE state = 'exporting';
CREATE INDEX history_exports_room ON history_exports(room_pk, created_at);
CREATE INDEX history_exports_state ON history_exports(state, created_at);
