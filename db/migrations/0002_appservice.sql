-- Appservice: homeserver transactions (durable idempotency), O(1) counters and membership events seen.
CREATE TABLE as_transactions (
    txn_id       TEXT    PRIMARY KEY,
    event_count  INTEGER NOT NULL,
    processed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX as_transactions_processed_at ON as_transactions(processed_at);

CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('transactions', 0), ('events', 0), ('last_transaction_at', 0);

CREATE TABLE membership_events (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL UNIQUE,
    room_id     TEXT    NOT NULL,
    state_key   TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    membership  TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX membership_events_room ON membership_events(room_id, state_key);
