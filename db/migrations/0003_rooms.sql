-- Rooms: platform projects and roles, one managed Matrix room per project, room members and user profiles; the tables double as the provisioning queue.
CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
CREATE INDEX projects_name ON projects(name);

CREATE TABLE project_roles (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'manager', 'member')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
CREATE INDEX project_roles_user ON project_roles(user_id);

CREATE TABLE matrix_rooms (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    project_id      INTEGER NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    room_id         TEXT    NOT NULL DEFAULT '',
    room_alias      TEXT    NOT NULL DEFAULT '',
    room_name       TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL DEFAULT 'creating'
                    CHECK (state IN ('creating', 'active', 'disabling', 'archived', 'error')),
    error_message   TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    members_dirty   INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    modified_at     INTEGER NOT NULL
);
CREATE INDEX matrix_rooms_state ON matrix_rooms(state, id);
CREATE INDEX matrix_rooms_queue ON matrix_rooms(next_attempt_at) WHERE state IN ('creating', 'disabling') OR members_dirty = 1;
CREATE INDEX matrix_rooms_room_id ON matrix_rooms(room_id) WHERE room_id != '';

CREATE TABLE matrix_room_members (
    room_pk     INTEGER NOT NULL REFERENCES matrix_rooms(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    membership  TEXT    NOT NULL DEFAULT '',
    power_level INTEGER NOT NULL DEFAULT 0,
    synced_at   INTEGER,
    last_error  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (room_pk, user_id)
) WITHOUT ROWID;
CREATE INDEX matrix_room_members_user ON matrix_room_members(user_id);

CREATE TABLE matrix_user_profiles (
    user_id         INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    matrix_user_id  TEXT    NOT NULL UNIQUE,
    provisioned     INTEGER NOT NULL DEFAULT 0,
    provisioned_at  INTEGER,
    last_synced_at  INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
CREATE INDEX matrix_user_profiles_pending ON matrix_user_profiles(next_attempt_at) WHERE provisioned = 0;
