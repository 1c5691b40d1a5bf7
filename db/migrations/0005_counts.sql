-- Counts the overview and diagnostics read in O(1): rooms by state and profiles kept by triggers, transactions per minute kept by the recorder, and indexes for the remaining reads.
CREATE TABLE room_state_counts (
    state TEXT    PRIMARY KEY,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO room_state_counts (state, n) SELECT state, COUNT(*) FROM matrix_rooms GROUP BY state;

CREATE TRIGGER matrix_rooms_count_insert AFTER INSERT ON matrix_rooms BEGIN
    INSERT INTO room_state_counts (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER matrix_rooms_count_delete AFTER DELETE ON matrix_rooms BEGIN
    UPDATE room_state_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER matrix_rooms_count_update AFTER UPDATE OF state ON matrix_rooms WHEN OLD.state != NEW.state BEGIN
    UPDATE room_state_counts SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO room_state_counts (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;

INSERT INTO counters (name, value) SELECT 'profiles', COUNT(*) FROM matrix_user_profiles;
INSERT INTO counters (name, value) SELECT 'profiles_provisioned', COUNT(*) FROM matrix_user_profiles WHERE provisioned != 0;
CREATE TRIGGER matrix_user_profiles_count_insert AFTER INSERT ON matrix_user_profiles BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'profiles';
    UPDATE counters SET value = value + (NEW.provisioned != 0) WHERE name = 'profiles_provisioned';
END;
CREATE TRIGGER matrix_user_profiles_count_delete AFTER DELETE ON matrix_user_profiles BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'profiles';
    UPDATE counters SET value = value - (OLD.provisioned != 0) WHERE name = 'profiles_provisioned';
END;
CREATE TRIGGER matrix_user_profiles_count_update AFTER UPDATE OF provisioned ON matrix_user_profiles
    WHEN (OLD.provisioned != 0) != (NEW.provisioned != 0) BEGIN
    UPDATE counters SET value = value + (NEW.provisioned != 0) - (OLD.provisioned != 0) WHERE name = 'profiles_provisioned';
END;

CREATE TABLE txn_minutes (
    minute INTEGER PRIMARY KEY,
    n      INTEGER NOT NULL
);
INSERT INTO txn_minutes (minute, n)
    SELECT processed_at / 60, COUNT(*) FROM as_transactions
    WHERE processed_at >= CAST(strftime('%s', 'now') AS INTEGER) - 7200 GROUP BY processed_at / 60;

CREATE INDEX matrix_rooms_dirty ON matrix_rooms(state) WHERE members_dirty != 0;
CREATE INDEX matrix_user_profiles_recent ON matrix_user_profiles(provisioned_at DESC, user_id DESC) WHERE provisioned != 0;
