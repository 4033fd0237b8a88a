-- Import the CSV files written by export.sql into a frontdoor PostgreSQL
-- database. Run it in the directory holding the files, as the role that
-- frontdoor connects as (or the database owner), in one transaction:
--
--   psql "postgres://frontdoor@db.example.com:5432/frontdoor" \
--        -v ON_ERROR_STOP=1 --single-transaction -f import.sql
--
-- The database must already have frontdoor's schema and nothing else: create
-- it with `frontdoor users list -config <postgres config>`, which applies the
-- migrations and writes no row, and start no replica before this has run.
-- Anything already in the tables makes the import stop without a change.
--
-- Column mapping (SQLite -> PostgreSQL): INTEGER Unix microseconds ->
-- timestamptz (exact), hex -> bytea, roles JSON array text -> text[],
-- disabled 0/1 -> boolean; users.id is kept as is.

\set ON_ERROR_STOP on

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM signing_keys)
     OR EXISTS (SELECT 1 FROM refresh_tokens) OR EXISTS (SELECT 1 FROM denied_jtis) THEN
    RAISE EXCEPTION 'this database already holds frontdoor data; import only into a freshly migrated one';
  END IF;
END $$;

-- Unix microseconds to timestamptz, exactly: to_timestamp() would go through
-- floating-point seconds and may round the last microsecond.
CREATE FUNCTION pg_temp.from_us(us bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE STRICT
  AS $$ SELECT timestamptz '1970-01-01 00:00:00+00'
               + (us / 1000000) * interval '1 second'
               + (us % 1000000) * interval '1 microsecond' $$;

CREATE TEMP TABLE sqlite_users (
  id bigint, appid text, openid text, unionid text, username text, password_hash text,
  nickname text, avatar_url text, gender integer, roles text, disabled integer, session_key_hex text,
  created_at bigint, updated_at bigint, last_login_at bigint, token_version bigint, token_version_at bigint
) ON COMMIT DROP;
CREATE TEMP TABLE sqlite_users_seq (seq bigint) ON COMMIT DROP;
CREATE TEMP TABLE sqlite_signing_keys (
  kid text, private_pem_hex text, created_at bigint, activated_at bigint, retired_at bigint
) ON COMMIT DROP;
CREATE TEMP TABLE sqlite_refresh_tokens (
  hash_hex text, family_id text, user_id bigint, issued_at bigint, expires_at bigint, rotated_at bigint, revoked_at bigint
) ON COMMIT DROP;
CREATE TEMP TABLE sqlite_denied_jtis (jti text, expires_at bigint, denied_at bigint) ON COMMIT DROP;

\copy sqlite_users FROM 'users.csv' WITH (FORMAT csv)
\copy sqlite_users_seq FROM 'users_seq.csv' WITH (FORMAT csv)
\copy sqlite_signing_keys FROM 'signing_keys.csv' WITH (FORMAT csv)
\copy sqlite_refresh_tokens FROM 'refresh_tokens.csv' WITH (FORMAT csv)
\copy sqlite_denied_jtis FROM 'denied_jtis.csv' WITH (FORMAT csv)

INSERT INTO users (id, appid, openid, unionid, username, password_hash, nickname, avatar_url, gender,
                   roles, disabled, session_key, created_at, updated_at, last_login_at,
                   token_version, token_version_at)
OVERRIDING SYSTEM VALUE
SELECT u.id, u.appid, u.openid, u.unionid, u.username, u.password_hash, u.nickname, u.avatar_url, u.gender,
       ARRAY(SELECT r.role FROM jsonb_array_elements_text(u.roles::jsonb) WITH ORDINALITY AS r(role, n) ORDER BY r.n),
       u.disabled <> 0, decode(u.session_key_hex, 'hex'),
       pg_temp.from_us(u.created_at), pg_temp.from_us(u.updated_at), pg_temp.from_us(u.last_login_at),
       u.token_version, pg_temp.from_us(u.token_version_at)
  FROM sqlite_users u ORDER BY u.id;

-- The next new user gets an id above every id SQLite ever handed out.
SELECT setval(pg_get_serial_sequence('users', 'id'), greatest(s.seq, 1), s.seq > 0) AS users_id_sequence
  FROM sqlite_users_seq s;

INSERT INTO signing_keys (kid, private_pem, created_at, activated_at, retired_at)
SELECT kid, decode(private_pem_hex, 'hex'),
       pg_temp.from_us(created_at), pg_temp.from_us(activated_at), pg_temp.from_us(retired_at)
  FROM sqlite_signing_keys;

INSERT INTO refresh_tokens (hash, family_id, user_id, issued_at, expires_at, rotated_at, revoked_at)
SELECT decode(hash_hex, 'hex'), family_id, user_id,
       pg_temp.from_us(issued_at), pg_temp.from_us(expires_at), pg_temp.from_us(rotated_at), pg_temp.from_us(revoked_at)
  FROM sqlite_refresh_tokens;

INSERT INTO denied_jtis (jti, expires_at, denied_at)
SELECT jti, pg_temp.from_us(expires_at), pg_temp.from_us(denied_at)
  FROM sqlite_denied_jtis;

-- What was imported, to compare with the SQLite counts.
SELECT (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM signing_keys) AS signing_keys,
       (SELECT count(*) FROM signing_keys WHERE retired_at IS NULL) AS active_keys,
       (SELECT count(*) FROM refresh_tokens) AS refresh_tokens,
       (SELECT count(*) FROM denied_jtis) AS denied_jtis;

ANALYZE users, signing_keys, refresh_tokens, denied_jtis;
