-- The PostgreSQL schema: the tables and constraints of SQLite's 0001_init
-- and 0002_sessions, in PostgreSQL's types. It starts as one file because no
-- PostgreSQL database predates it. Later migrations must be additive (new
-- tables, new nullable or defaulted columns, new indexes): replicas of the
-- previous build keep running against the migrated database during a
-- rolling upgrade.
--
-- Timestamps are timestamptz, microsecond precision. Absent identities are
-- NULL, never '': the partial unique indexes below then leave password-only
-- users out of the (appid, openid) index and WeChat-only users out of the
-- username index.

CREATE TABLE users (
    -- An identity never hands an id out twice: ids appear in access tokens
    -- (sub), so one must never name a second user.
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appid            text,
    openid           text,
    unionid          text,
    -- "C": usernames match byte for byte (case-sensitive, no Unicode
    -- normalisation), whatever the database's collation.
    username         text        COLLATE "C",
    password_hash    text,
    nickname         text        NOT NULL DEFAULT '',
    avatar_url       text        NOT NULL DEFAULT '',
    gender           integer     NOT NULL DEFAULT 0,
    roles            text[]      NOT NULL DEFAULT '{}'
                     CHECK (array_ndims(roles) IS NULL OR array_ndims(roles) = 1)
                     CHECK (array_position(roles, NULL) IS NULL),
    disabled         boolean     NOT NULL DEFAULT false,
    -- Opaque to the store: sealed by the login package when a secret key is set.
    session_key      bytea,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_login_at    timestamptz,
    -- Every access token carries the version current when it was issued; a
    -- token below the user's version is revoked. token_version_at is NULL
    -- until the first increment, so that replicas polling for changes never
    -- see users that have none.
    token_version    bigint      NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    token_version_at timestamptz,
    CHECK ((appid IS NULL) = (openid IS NULL)),
    CHECK (openid IS NULL OR openid <> ''),
    CHECK (username IS NULL OR username <> ''),
    CHECK (openid IS NOT NULL OR username IS NOT NULL)
);

CREATE UNIQUE INDEX users_appid_openid ON users (appid, openid) WHERE openid IS NOT NULL;
CREATE UNIQUE INDEX users_username ON users (username) WHERE username IS NOT NULL;
CREATE INDEX users_unionid ON users (unionid) WHERE unionid IS NOT NULL;
CREATE INDEX users_token_version_at ON users (token_version_at) WHERE token_version_at IS NOT NULL;

CREATE TABLE signing_keys (
    kid          text        NOT NULL PRIMARY KEY,
    private_pem  bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    activated_at timestamptz NOT NULL,
    retired_at   timestamptz
);

-- At most one active key, enforced by the database itself so that no
-- interleaving of rotations from several replicas can leave two keys
-- signing. EnsureSigningKey names it as its ON CONFLICT target.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

-- A refresh token is kept only as the SHA-256 of its value. Rotated tokens
-- stay until they expire: presenting one again is how a stolen token is
-- detected, and revokes its whole family.
CREATE TABLE refresh_tokens (
    hash       bytea       NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    family_id  text        NOT NULL CHECK (family_id <> ''),
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz,
    CHECK (expires_at > issued_at)
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- Disabling a user revokes its unrevoked tokens; revoked ones need no lookup.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Access tokens logged out before they expire. Rows are useless once the
-- token has expired and are then collected.
CREATE TABLE denied_jtis (
    jti        text        NOT NULL PRIMARY KEY CHECK (jti <> ''),
    expires_at timestamptz NOT NULL,
    denied_at  timestamptz NOT NULL
);

-- Every replica polls for the entries of the last few seconds.
CREATE INDEX denied_jtis_denied_at ON denied_jtis (denied_at);
CREATE INDEX denied_jtis_expires_at ON denied_jtis (expires_at);
