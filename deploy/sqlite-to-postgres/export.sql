-- Export a frontdoor SQLite database to CSV files for import.sql.
-- Run it on a stopped frontdoor's database (see docs/scaling.md), in an
-- empty directory, which receives users.csv, users_seq.csv,
-- signing_keys.csv, refresh_tokens.csv and denied_jtis.csv:
--
--   sqlite3 -bail /path/to/frontdoor.db < export.sql
--
-- The files hold password hashes, WeChat session keys and the signing keys'
-- PRIVATE keys: keep them as secret as the database, delete them afterwards.
--
-- Encoding: timestamps stay INTEGER Unix microseconds (import.sql converts
-- them), blobs become hex, NULL becomes an empty unquoted field and '' an
-- empty quoted one, which psql's CSV reader tells apart the same way.
.bail on
.headers off
.mode csv
.once users.csv
SELECT id, appid, openid, unionid, username, password_hash, nickname, avatar_url, gender, roles, disabled,
       CASE WHEN session_key IS NULL THEN NULL ELSE hex(session_key) END,
       created_at, updated_at, last_login_at, token_version, token_version_at
  FROM users ORDER BY id;
-- The highest user id ever handed out (AUTOINCREMENT remembers it even when
-- that row is gone), so that PostgreSQL never hands it out again.
.once users_seq.csv
SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0),
           COALESCE((SELECT max(id) FROM users), 0));
.once signing_keys.csv
SELECT kid, hex(private_pem), created_at, activated_at, retired_at FROM signing_keys;
.once refresh_tokens.csv
SELECT hex(hash), family_id, user_id, issued_at, expires_at, rotated_at, revoked_at FROM refresh_tokens;
.once denied_jtis.csv
SELECT jti, expires_at, denied_at FROM denied_jtis;
