package store

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLitePools exposes the connection pools of s to the external tests, which
// check the settings of individual pooled connections.
func SQLitePools(s *SQLite) (read, write *sql.DB) { return s.read, s.write }

// GCBatch is the number of rows DeleteExpired deletes per statement.
const GCBatch = gcBatch

// HotQuery is a statement that runs on every refresh, or every few seconds
// on every replica, and the index it must use.
type HotQuery struct{ Name, SQL, Index string }

// HotQueries lists the statements whose query plans the tests check.
func HotQueries() []HotQuery {
	return []HotQuery{
		{"consume refresh token", consumeRefreshSQL, "PRIMARY KEY"},
		{"revoke family", revokeFamilySQL, "refresh_tokens_family"},
		{"revoke user", revokeUserSQL, "refresh_tokens_user"},
		{"denied jtis since", deniedJTIsSinceSQL, "denied_jtis_denied_at"},
		{"user versions since", userVersionsSinceSQL, "users_token_version_at"},
		{"delete expired refresh tokens", deleteExpiredRefreshSQL, "refresh_tokens_expires_at"},
		{"delete expired jtis", deleteExpiredJTIsSQL, "denied_jtis_expires_at"},
	}
}

// PostgresPool exposes the connection pool of p to the external tests, which
// check the settings of pooled sessions.
func PostgresPool(p *Postgres) *pgxpool.Pool { return p.pool }

// PostgresHotQueries lists the PostgreSQL statements whose query plans the
// tests check, with the index each must use.
func PostgresHotQueries() []HotQuery {
	return []HotQuery{
		{"consume refresh token", pgConsumeRefreshSQL, "refresh_tokens_pkey"},
		{"revoke family", pgRevokeFamilySQL, "refresh_tokens_family"},
		{"revoke user", pgRevokeUserSQL, "refresh_tokens_user"},
		{"denied jtis since", pgDeniedJTIsSinceSQL, "denied_jtis_denied_at"},
		{"user versions since", pgUserVersionsSinceSQL, "users_token_version_at"},
		{"delete expired refresh tokens", pgDeleteExpiredRefreshSQL, "refresh_tokens_expires_at"},
		{"delete expired jtis", pgDeleteExpiredJTIsSQL, "denied_jtis_expires_at"},
		{"update wechat user", pgUpdateWeChatUserSQL, "users_appid_openid"},
	}
}

// LockKey is the advisory lock key of the TryLock lock called name.
func LockKey(name string) int64 { return lockKey(name) }
