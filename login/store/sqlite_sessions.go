package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// gcBatch is how many rows DeleteExpired deletes per statement. Each batch
// is its own short write transaction, so logins and refreshes queue behind
// one batch at most rather than behind the whole collection.
const gcBatch = 1000

const refreshColumns = `hash, family_id, user_id, issued_at, expires_at, rotated_at, revoked_at`

// The statements whose plans sqlite_test.go checks: they run on every
// refresh, or every few seconds on every replica.
const (
	// consumeRefreshSQL rotates a token only if it is consumable; of
	// concurrent rotations only the first finds rotated_at NULL.
	consumeRefreshSQL = `UPDATE refresh_tokens SET rotated_at = ?
		WHERE hash = ? AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ?
		RETURNING ` + refreshColumns
	revokeFamilySQL = `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`
	revokeUserSQL   = `UPDATE refresh_tokens SET revoked_at = ?
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
		RETURNING rotated_at IS NULL`
	deniedJTIsSinceSQL = `SELECT jti, expires_at, denied_at FROM denied_jtis
		WHERE denied_at > ? AND expires_at > ? ORDER BY denied_at, jti`
	userVersionsSinceSQL = `SELECT id, token_version, token_version_at FROM users
		WHERE token_version_at > ? ORDER BY token_version_at, id`
	deleteExpiredRefreshSQL = `DELETE FROM refresh_tokens WHERE hash IN
		(SELECT hash FROM refresh_tokens WHERE expires_at <= ? LIMIT ?)`
	deleteExpiredJTIsSQL = `DELETE FROM denied_jtis WHERE jti IN
		(SELECT jti FROM denied_jtis WHERE expires_at <= ? LIMIT ?)`
)

// CreateRefreshToken stores t as a live token; ErrNotFound if its user does
// not exist, ErrConflict if its hash does.
func (s *SQLite) CreateRefreshToken(ctx context.Context, t RefreshToken) error {
	if err := checkRefreshToken(t); err != nil {
		return fmt.Errorf("store: create refresh token: %w", err)
	}
	if t.FamilyID == "" {
		return errors.New("store: create refresh token: token has no family")
	}
	err := s.writeTx(ctx, func(q writeQuerier) error { return insertRefreshToken(q, t) })
	if err != nil {
		return s.wrap("create refresh token", err)
	}
	return nil
}

// RotateRefreshToken consumes old and stores next in one write transaction.
// A reuse revokes the family in that transaction and commits it before
// ErrRefreshReused is returned.
func (s *SQLite) RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, now time.Time) (RefreshToken, error) {
	const op = "rotate refresh token"
	if err := checkRefreshToken(next); err != nil {
		return RefreshToken{}, fmt.Errorf("store: %s: next token: %w", op, err)
	}
	var (
		prev   RefreshToken
		reused bool
	)
	err := s.writeTx(ctx, func(q writeQuerier) error {
		var err error
		prev, err = scanRefreshToken(q.queryRow(consumeRefreshSQL, now.UnixMicro(), old, now.UnixMicro()))
		if errors.Is(err, sql.ErrNoRows) {
			// On a reuse this returns nil, committing the revocation.
			prev, reused, err = refuseRotation(q, old, now)
			return err
		}
		if err != nil {
			return err
		}
		if err := inheritFamily(&next, prev); err != nil {
			return err
		}
		return insertRefreshToken(q, next)
	})
	if err != nil {
		return RefreshToken{}, s.wrap(op, err)
	}
	if reused {
		return prev, fmt.Errorf("store: %s: %w", op, ErrRefreshReused)
	}
	return prev, nil
}

// refuseRotation finds out why the token with hash old could not be
// consumed. An unknown, expired or revoked token is ErrNotFound. A token
// that was rotated before is being reused: its whole family is revoked at
// now, and the result is the token as revoked and true.
func refuseRotation(q writeQuerier, old []byte, now time.Time) (RefreshToken, bool, error) {
	t, err := scanRefreshToken(q.queryRow(`SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?`, old))
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, false, ErrNotFound
	}
	if err != nil {
		return RefreshToken{}, false, err
	}
	// An expired token is refused as unknown even if it was rotated: garbage
	// collection deletes it at any moment after expiry, so it cannot be
	// relied on to detect a reuse.
	if !t.RevokedAt.IsZero() || t.ExpiresAt.UnixMicro() <= now.UnixMicro() {
		return RefreshToken{}, false, ErrNotFound
	}
	// Live and unrevoked, yet the UPDATE in the same transaction refused it:
	// it was rotated before.
	if err := q.exec(revokeFamilySQL, now.UnixMicro(), t.FamilyID); err != nil {
		return RefreshToken{}, false, err
	}
	t.RevokedAt = fromMicros(now.UnixMicro())
	return t, true, nil
}

// RevokeRefreshFamily revokes the family of the token with hash and returns
// its user id; ErrNotFound if no token has that hash.
func (s *SQLite) RevokeRefreshFamily(ctx context.Context, hash []byte, now time.Time) (int64, error) {
	var userID int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var family string
		if err := tx.QueryRowContext(ctx, `SELECT family_id, user_id FROM refresh_tokens WHERE hash = ?`, hash).Scan(&family, &userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, revokeFamilySQL, now.UnixMicro(), family)
		return err
	})
	if err != nil {
		return 0, s.wrap("revoke refresh family", err)
	}
	return userID, nil
}

// RevokeUserRefreshTokens revokes the user's unrevoked, unexpired tokens,
// rotated ones included, and counts the live current tokens among them.
func (s *SQLite) RevokeUserRefreshTokens(ctx context.Context, userID int64, now time.Time) (int, error) {
	sessions := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, revokeUserSQL, now.UnixMicro(), userID, now.UnixMicro())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var current bool
			if err := rows.Scan(&current); err != nil {
				return err
			}
			if current {
				sessions++
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, s.wrap("revoke user refresh tokens", err)
	}
	return sessions, nil
}

// DenyJTI records jti as revoked until expiresAt; a jti already denied keeps
// its entry.
func (s *SQLite) DenyJTI(ctx context.Context, jti string, expiresAt, now time.Time) error {
	switch {
	case jti == "":
		return errors.New("store: deny jti: empty jti")
	case expiresAt.IsZero():
		return errors.New("store: deny jti: no expiry time")
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO denied_jtis (jti, expires_at, denied_at) VALUES (?, ?, ?)
		ON CONFLICT (jti) DO NOTHING`, jti, expiresAt.UnixMicro(), now.UnixMicro())
	if err != nil {
		return s.wrap("deny jti", err)
	}
	return nil
}

// DeniedJTIsSince lists the unexpired entries denied after since.
func (s *SQLite) DeniedJTIsSince(ctx context.Context, since, now time.Time) ([]DeniedJTI, error) {
	rows, err := s.read.QueryContext(ctx, deniedJTIsSinceSQL, since.UnixMicro(), now.UnixMicro())
	if err != nil {
		return nil, s.wrap("denied jtis since", err)
	}
	defer rows.Close()
	denied := []DeniedJTI{}
	for rows.Next() {
		var (
			d           DeniedJTI
			exp, denyAt int64
		)
		if err := rows.Scan(&d.JTI, &exp, &denyAt); err != nil {
			return nil, s.wrap("denied jtis since", err)
		}
		d.ExpiresAt, d.DeniedAt = fromMicros(exp), fromMicros(denyAt)
		denied = append(denied, d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("denied jtis since", err)
	}
	return denied, nil
}

// UserVersionsSince lists the users whose token version changed after since.
func (s *SQLite) UserVersionsSince(ctx context.Context, since time.Time) ([]UserVersion, error) {
	rows, err := s.read.QueryContext(ctx, userVersionsSinceSQL, since.UnixMicro())
	if err != nil {
		return nil, s.wrap("user versions since", err)
	}
	defer rows.Close()
	versions := []UserVersion{}
	for rows.Next() {
		var (
			v  UserVersion
			at int64
		)
		if err := rows.Scan(&v.UserID, &v.Version, &at); err != nil {
			return nil, s.wrap("user versions since", err)
		}
		v.ChangedAt = fromMicros(at)
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("user versions since", err)
	}
	return versions, nil
}

// DeleteExpired deletes expired refresh tokens and denied jtis in batches of
// gcBatch rows. On an error the counts are of the rows deleted before it:
// those deletions are committed.
func (s *SQLite) DeleteExpired(ctx context.Context, now time.Time) (refresh, jtis int, err error) {
	refresh, err = s.deleteInBatches(ctx, deleteExpiredRefreshSQL, now)
	if err != nil {
		return refresh, 0, s.wrap("delete expired refresh tokens", err)
	}
	jtis, err = s.deleteInBatches(ctx, deleteExpiredJTIsSQL, now)
	if err != nil {
		return refresh, jtis, s.wrap("delete expired denied jtis", err)
	}
	return refresh, jtis, nil
}

// deleteInBatches runs query, a DELETE of at most ? rows expired at ?, until
// it deletes fewer than a full batch.
func (s *SQLite) deleteInBatches(ctx context.Context, query string, now time.Time) (int, error) {
	total := 0
	for {
		res, err := s.write.ExecContext(ctx, query, now.UnixMicro(), gcBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < gcBatch {
			return total, nil
		}
	}
}

// checkRefreshToken rejects a token whose hash or times cannot be right.
// Its family and user are checked by the caller and the foreign key.
func checkRefreshToken(t RefreshToken) error {
	switch {
	case len(t.Hash) != sha256.Size:
		return fmt.Errorf("hash is %d bytes, want %d (SHA-256)", len(t.Hash), sha256.Size)
	case t.IssuedAt.IsZero() || t.ExpiresAt.IsZero():
		return errors.New("token has no issue or expiry time")
	case t.ExpiresAt.UnixMicro() <= t.IssuedAt.UnixMicro():
		return errors.New("token expires before it is issued")
	}
	return nil
}

// checkWeChatLogin rejects a login that names no WeChat identity.
func checkWeChatLogin(in WeChatLogin) error {
	if in.AppID == "" || in.OpenID == "" {
		return errors.New("appid and openid are required")
	}
	return nil
}

// checkWeChatSession checks the input of StartWeChatSession before anything
// is written: first is stored for the user the login finds or creates, so
// it must not name one itself.
func checkWeChatSession(in WeChatLogin, first RefreshToken) error {
	if err := checkWeChatLogin(in); err != nil {
		return err
	}
	if err := checkRefreshToken(first); err != nil {
		return fmt.Errorf("first token: %w", err)
	}
	switch {
	case first.FamilyID == "":
		return errors.New("first token has no family")
	case first.UserID != 0:
		return errors.New("first token names a user; the login decides which")
	}
	return nil
}

const insertRefreshTokenSQL = `INSERT INTO refresh_tokens (` + refreshColumns + `) VALUES (?, ?, ?, ?, ?, NULL, NULL)`

func insertRefreshToken(q writeQuerier, t RefreshToken) error {
	return q.exec(insertRefreshTokenSQL, t.Hash, t.FamilyID, t.UserID, t.IssuedAt.UnixMicro(), t.ExpiresAt.UnixMicro())
}

// scanRefreshToken reads the refreshColumns of one row.
func scanRefreshToken(r rowScanner) (RefreshToken, error) {
	var (
		t                RefreshToken
		issued, expires  int64
		rotated, revoked sql.NullInt64
	)
	if err := r.Scan(&t.Hash, &t.FamilyID, &t.UserID, &issued, &expires, &rotated, &revoked); err != nil {
		return RefreshToken{}, err
	}
	t.IssuedAt, t.ExpiresAt = fromMicros(issued), fromMicros(expires)
	t.RotatedAt, t.RevokedAt = fromNullMicros(rotated), fromNullMicros(revoked)
	return t, nil
}

// inheritFamily gives next, the successor of the rotated token prev, prev's
// family and user where next leaves them zero, and refuses a successor that
// names another family or user. Both backends share it.
func inheritFamily(next *RefreshToken, prev RefreshToken) error {
	switch {
	case next.FamilyID == "":
		next.FamilyID = prev.FamilyID
	case next.FamilyID != prev.FamilyID:
		return errors.New("next token names another family than the rotated one")
	}
	switch {
	case next.UserID == 0:
		next.UserID = prev.UserID
	case next.UserID != prev.UserID:
		return errors.New("next token names another user than the rotated one")
	}
	return nil
}
