-- Bot outbox: every message the bot posts into a room (command replies and notifications), kept from queueing until sent or failed, then pruned.
CREATE TABLE bot_outbox (
    id               INTEGER PRIMARY KEY,
    uuid             TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL CHECK (kind IN ('notification', 'reply')),
    state            TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    room_pk          INTEGER NOT NULL REFERENCES matrix_rooms(id) ON DELETE CASCADE,
    room_id          TEXT    NOT NULL,              -- the Matrix room at queue time
    -- Replies: the command's event, its sender and text (NULL / '' for notifications).
    -- NULLs are distinct in a UNIQUE constraint, so only replies are unique per event.
    command_event_id TEXT,
    command_sender   TEXT    NOT NULL DEFAULT '',
    command_body     TEXT    NOT NULL DEFAULT '',
    body             TEXT    NOT NULL DEFAULT '',   -- Markdown; '' for a reply not composed yet
    attempts         INTEGER NOT NULL DEFAULT 0,    -- sends begun in the current round
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    event_id         TEXT    NOT NULL DEFAULT '',   -- the posted event, once sent
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    failed_at        INTEGER,
    UNIQUE (room_pk, command_event_id)
);
-- The sender's queue in its order: kind sorts 'notification' before 'reply', then oldest first.
CREATE INDEX bot_outbox_pending ON bot_outbox(kind, id) WHERE state = 'pending';
-- A room's recent messages and the replies of its last minute (the rate rule).
CREATE INDEX bot_outbox_room ON bot_outbox(room_pk, created_at);
-- Pruning and the failures of the last 24 hours.
CREATE INDEX bot_outbox_sent ON bot_outbox(sent_at) WHERE state = 'sent';
CREATE INDEX bot_outbox_failed ON bot_outbox(failed_at) WHERE state = 'failed';
