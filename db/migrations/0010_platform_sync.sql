-- Platform sync: customers and their owners, projects' customers, the platform's role names, rows owned by the sync, sync runs, received events and announced order states.

-- source says who owns a directory row: '' = pushed through the directory API, 'waldur' =
-- mirrored by the platform sync (the directory API then refuses to change it).
CREATE TABLE customers (
    id           INTEGER PRIMARY KEY,
    uuid         TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    abbreviation TEXT    NOT NULL DEFAULT '',
    source       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    modified_at  INTEGER NOT NULL
);
CREATE INDEX customers_name ON customers(name);

ALTER TABLE projects ADD COLUMN customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL;
ALTER TABLE projects ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX projects_customer ON projects(customer_id) WHERE customer_id IS NOT NULL;
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT '';

-- Project roles take the platform's names (PROJECT.ADMIN, ...); the old short names are
-- rewritten. SQLite cannot change a CHECK constraint, so the table is rebuilt.
CREATE TABLE project_roles_v2 (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('PROJECT.ADMIN', 'PROJECT.MANAGER', 'PROJECT.MEMBER')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
INSERT INTO project_roles_v2 (project_id, user_id, role, created_at)
    SELECT project_id, user_id,
           CASE role WHEN 'admin' THEN 'PROJECT.ADMIN' WHEN 'manager' THEN 'PROJECT.MANAGER' ELSE 'PROJECT.MEMBER' END,
           created_at
    FROM project_roles;
DROP TABLE project_roles;
ALTER TABLE project_roles_v2 RENAME TO project_roles;
CREATE INDEX project_roles_user ON project_roles(user_id);

-- The owners of a customer are members of every room of its projects.
CREATE TABLE customer_roles (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('CUSTOMER.OWNER')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, user_id)
) WITHOUT ROWID;
CREATE INDEX customer_roles_user ON customer_roles(user_id);

-- Who belongs in a project's room, one row per person: the project's role holders and the
-- owners of its customer. Someone who is both keeps the role that weighs most in the
-- room: PROJECT.ADMIN, then CUSTOMER.OWNER, then the other project roles. Each arm reads
-- one table by its keys, so a query for one project or one user stays on the indexes.
CREATE VIEW project_members (project_id, user_id, role, created_at) AS
    SELECT r.project_id, r.user_id, r.role, r.created_at FROM project_roles r
    WHERE r.role = 'PROJECT.ADMIN' OR NOT EXISTS (
        SELECT 1 FROM projects p JOIN customer_roles c ON c.customer_id = p.customer_id
        WHERE p.id = r.project_id AND c.user_id = r.user_id)
    UNION ALL
    SELECT p.id, c.user_id, c.role, c.created_at FROM customer_roles c JOIN projects p ON p.customer_id = c.customer_id
    WHERE NOT EXISTS (
        SELECT 1 FROM project_roles r
        WHERE r.project_id = p.id AND r.user_id = c.user_id AND r.role = 'PROJECT.ADMIN');

-- One row per sync run, full or incremental: its outcome and counts (JSON:
-- {"customers": {"created": n, "updated": n, "removed": n}, "projects": ..., ...}).
CREATE TABLE platform_sync_runs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('full', 'incremental')),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    ok          INTEGER,
    error       TEXT    NOT NULL DEFAULT '',
    counts      TEXT    NOT NULL DEFAULT '{}',
    changes     INTEGER NOT NULL DEFAULT 0, -- rows changed in all (the counts' sum)
    requests    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX platform_sync_runs_kind ON platform_sync_runs(kind, id);

-- Events the platform pushed to the receiver, stored before the receiver answers and
-- applied by the events worker. body is the request body as received.
CREATE TABLE platform_events (
    id              INTEGER PRIMARY KEY,
    event_type      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    content_type    TEXT    NOT NULL DEFAULT '',
    body            BLOB    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'ignored', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    error           TEXT    NOT NULL DEFAULT '',
    received_at     INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX platform_events_pending ON platform_events(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX platform_events_done ON platform_events(done_at) WHERE state != 'pending';

INSERT INTO counters (name, value) VALUES ('platform_events', 0), ('platform_last_event_at', 0);

-- The last state announced of each order, so that a repeated or late event never
-- announces the same state twice.
CREATE TABLE platform_orders (
    uuid       TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
