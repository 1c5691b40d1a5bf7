-- Transactions per minute, written once a minute instead of on every commit. txn_minutes
-- held each minute's count, bumped by every commit of the recorder: a statement and a
-- page more on the homeserver's path, one transaction at a time. txn_marks holds, for
-- each minute that had transactions, the transactions counter before its first one; the
-- count since a minute is the counter minus that minute's mark (or the next one's).
CREATE TABLE txn_marks (
    minute INTEGER PRIMARY KEY,
    before INTEGER NOT NULL
);
INSERT INTO txn_marks (minute, before)
    SELECT minute, (SELECT value FROM counters WHERE name = 'transactions') - SUM(n) OVER (ORDER BY minute DESC)
    FROM txn_minutes;
DROP TABLE txn_minutes;
