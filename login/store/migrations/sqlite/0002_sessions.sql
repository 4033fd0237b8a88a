-- Session lifecycle: refresh tokens, denied access-token ids and the
-- per-user token version that cuts off access tokens issued before a role
-- change or a disable.
--
-- Timestamps are INTEGER Unix microseconds (UTC), as in 0001.

-- Every access token carries the version current when it was issued; a
-- token below the user's version is revoked. token_version_at is NULL until
-- the first increment, so that replicas polling for changes never see users
-- that have none.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0 CHECK (token_version >= 0);
ALTER TABLE users ADD COLUMN token_version_at INTEGER;

CREATE INDEX users_token_version_at ON users (token_version_at) WHERE token_version_at IS NOT NULL;

-- A refresh token is kept only as the SHA-256 of its value. Rotated tokens
-- stay until they expire: presenting one again is how a stolen token is
-- detected, and revokes its whole family.
CREATE TABLE refresh_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    family_id  TEXT    NOT NULL CHECK (family_id <> ''),
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    revoked_at INTEGER,
    CHECK (expires_at > issued_at)
) WITHOUT ROWID;

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- Disabling a user revokes its unrevoked tokens; revoked ones need no lookup.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Access tokens logged out before they expire. Rows are useless once the
-- token has expired and are then collected.
CREATE TABLE denied_jtis (
    jti        TEXT    NOT NULL PRIMARY KEY CHECK (jti <> ''),
    expires_at INTEGER NOT NULL,
    denied_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Every replica polls for the entries of the last few seconds.
CREATE INDEX denied_jtis_denied_at ON denied_jtis (denied_at);
CREATE INDEX denied_jtis_expires_at ON denied_jtis (expires_at);
