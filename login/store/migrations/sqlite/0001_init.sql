-- Users and signing keys.
--
-- Timestamps are INTEGER Unix microseconds (UTC), the precision PostgreSQL's
-- timestamptz keeps, so both stores round-trip the same values. Absent
-- identities are NULL, never '': the partial unique indexes below then leave
-- password-only users out of the (appid, openid) index and WeChat-only users
-- out of the username index.

CREATE TABLE users (
    -- AUTOINCREMENT: ids appear in access tokens (sub), so an id must never
    -- be handed to a second user, even after the highest row is deleted.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    appid         TEXT,
    openid        TEXT,
    unionid       TEXT,
    username      TEXT,
    password_hash TEXT,
    nickname      TEXT    NOT NULL DEFAULT '',
    avatar_url    TEXT    NOT NULL DEFAULT '',
    gender        INTEGER NOT NULL DEFAULT 0,
    roles         TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(roles) AND json_type(roles) = 'array'),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Opaque to the store: sealed by the login package when a secret key is set.
    session_key   BLOB,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    CHECK ((appid IS NULL) = (openid IS NULL)),
    CHECK (openid IS NULL OR openid <> ''),
    CHECK (username IS NULL OR username <> ''),
    CHECK (openid IS NOT NULL OR username IS NOT NULL)
);

CREATE UNIQUE INDEX users_appid_openid ON users (appid, openid) WHERE openid IS NOT NULL;
CREATE UNIQUE INDEX users_username ON users (username) WHERE username IS NOT NULL;
CREATE INDEX users_unionid ON users (unionid) WHERE unionid IS NOT NULL;

CREATE TABLE signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    private_pem  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER NOT NULL,
    retired_at   INTEGER
);

-- At most one active key, enforced by the database itself so that no
-- interleaving of rotations from several processes can leave two keys signing.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
