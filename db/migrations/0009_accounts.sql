-- Accounts: who made each Matrix account (no silent takeover of an existing one), and the homeserver side of a user's deactivation (devices signed out, account locked).
-- registration: '' never asked for; 'sent' asked, the answer never came (a registration
-- that may have succeeded); 'created' made by this server; 'linked' an existing account
-- staff linked on purpose; 'refused' it existed before this server asked, so it is not
-- used until linked.
ALTER TABLE matrix_user_profiles ADD COLUMN registration TEXT NOT NULL DEFAULT ''
    CHECK (registration IN ('', 'sent', 'created', 'linked', 'refused'));
-- Accounts provisioned before this migration were adopted by the old rule (an existing
-- account counted as done): they stay in use.
UPDATE matrix_user_profiles SET registration = 'created' WHERE provisioned != 0;
-- deactivation: 0 nothing to do; 1 the user is deactivated and their devices are still
-- to be signed out (and the account locked); 2 done.
ALTER TABLE matrix_user_profiles ADD COLUMN deactivation INTEGER NOT NULL DEFAULT 0
    CHECK (deactivation IN (0, 1, 2));
-- locked: a lock was sent to the homeserver and not lifted since (set before it is sent,
-- so a crash never leaves a lock nobody knows of).
ALTER TABLE matrix_user_profiles ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX matrix_user_profiles_deactivating ON matrix_user_profiles(next_attempt_at) WHERE deactivation = 1;
