package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The statements whose plans postgres_test.go checks: they run on every
// refresh, or every few seconds on every replica. They are the SQLite ones
// with numbered parameters.
const (
	// pgConsumeRefreshSQL rotates a token only if it is consumable. A
	// concurrent rotation of the same token waits for the row lock and
	// then, re-reading the row, finds rotated_at set.
	pgConsumeRefreshSQL = `UPDATE refresh_tokens SET rotated_at = $1
		WHERE hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $1
		RETURNING ` + refreshColumns
	pgRevokeFamilySQL = `UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`
	pgRevokeUserSQL   = `UPDATE refresh_tokens SET revoked_at = $1
		WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1
		RETURNING rotated_at IS NULL`
	// COLLATE "C" breaks ties byte by byte, as SQLite does.
	pgDeniedJTIsSinceSQL = `SELECT jti, expires_at, denied_at FROM denied_jtis
		WHERE denied_at > $1 AND expires_at > $2 ORDER BY denied_at, jti COLLATE "C"`
	pgUserVersionsSinceSQL = `SELECT id, token_version, token_version_at FROM users
		WHERE token_version_at > $1 ORDER BY token_version_at, id`
	pgDeleteExpiredRefreshSQL = `DELETE FROM refresh_tokens WHERE hash IN
		(SELECT hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2)`
	pgDeleteExpiredJTIsSQL = `DELETE FROM denied_jtis WHERE jti IN
		(SELECT jti FROM denied_jtis WHERE expires_at <= $1 LIMIT $2)`
)

// pgQuerier is what *pgxpool.Pool and pgx.Tx have in common.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CreateRefreshToken stores t as a live token; ErrNotFound if its user does
// not exist, ErrConflict if its hash does.
func (p *Postgres) CreateRefreshToken(ctx context.Context, t RefreshToken) error {
	if err := checkRefreshToken(t); err != nil {
		return fmt.Errorf("store: create refresh token: %w", err)
	}
	if t.FamilyID == "" {
		return errors.New("store: create refresh token: token has no family")
	}
	if err := insertPGRefreshToken(ctx, p.pool, t); err != nil {
		return p.wrap("create refresh token", err)
	}
	return nil
}

// RotateRefreshToken consumes old and stores next in one transaction. A
// reuse revokes the family in that transaction and commits it before
// ErrRefreshReused is returned.
func (p *Postgres) RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, now time.Time) (RefreshToken, error) {
	const op = "rotate refresh token"
	if err := checkRefreshToken(next); err != nil {
		return RefreshToken{}, fmt.Errorf("store: %s: next token: %w", op, err)
	}
	var (
		prev   RefreshToken
		reused bool
	)
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var err error
		prev, err = scanPGRefreshToken(tx.QueryRow(ctx, pgConsumeRefreshSQL, now, old))
		if errors.Is(err, pgx.ErrNoRows) {
			// On a reuse this returns nil, committing the revocation.
			prev, reused, err = refusePGRotation(ctx, tx, old, now)
			return err
		}
		if err != nil {
			return err
		}
		if err := inheritFamily(&next, prev); err != nil {
			return err
		}
		return insertPGRefreshToken(ctx, tx, next)
	})
	if err != nil {
		return RefreshToken{}, p.wrap(op, err)
	}
	if reused {
		return prev, fmt.Errorf("store: %s: %w", op, ErrRefreshReused)
	}
	return prev, nil
}

// refusePGRotation finds out why the token with hash old could not be
// consumed, as refuseRotation does for SQLite: an unknown, expired or
// revoked token is ErrNotFound, and a live one was rotated before, so its
// family is revoked at now.
func refusePGRotation(ctx context.Context, tx pgx.Tx, old []byte, now time.Time) (RefreshToken, bool, error) {
	t, err := scanPGRefreshToken(tx.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, old))
	if errors.Is(err, pgx.ErrNoRows) {
		return RefreshToken{}, false, ErrNotFound
	}
	if err != nil {
		return RefreshToken{}, false, err
	}
	if !t.RevokedAt.IsZero() || t.ExpiresAt.UnixMicro() <= now.UnixMicro() {
		return RefreshToken{}, false, ErrNotFound
	}
	if err := revokeFamilyTx(ctx, tx, t.FamilyID, now); err != nil {
		return RefreshToken{}, false, err
	}
	t.RevokedAt = fromMicros(now.UnixMicro())
	return t, true, nil
}

// revokeFamilyTx revokes every unrevoked token of family at now.
//
// One UPDATE is not enough under READ COMMITTED. It works on the tokens its
// snapshot holds; if it has to wait for a rotation that holds one of them,
// it re-reads that row once the rotation commits, but does not see the
// token the rotation inserted, which would stay live. Repeating the UPDATE
// (a new statement, a new snapshot) catches it, until an UPDATE finds
// nothing left to revoke: nothing rotated concurrently with it, and every
// token it saw is revoked and, until commit, locked by this transaction, so
// a rotation that comes later waits and then finds its token revoked. The
// loop is bounded only against a client that rotates its newest token in a
// tight loop at the same time.
func revokeFamilyTx(ctx context.Context, q pgQuerier, family string, now time.Time) error {
	for range maxRevokePasses {
		tag, err := q.Exec(ctx, pgRevokeFamilySQL, now, family)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
	}
	return errors.New("the family kept gaining tokens while it was being revoked")
}

// RevokeRefreshFamily revokes the family of the token with hash and returns
// its user id; ErrNotFound if no token has that hash. It needs no
// transaction: a token's family and user never change, and a revocation is
// never undone, so a failure half way leaves nothing to roll back.
func (p *Postgres) RevokeRefreshFamily(ctx context.Context, hash []byte, now time.Time) (int64, error) {
	var (
		family string
		userID int64
	)
	err := p.pool.QueryRow(ctx, `SELECT family_id, user_id FROM refresh_tokens WHERE hash = $1`, hash).Scan(&family, &userID)
	if err != nil {
		return 0, p.wrap("revoke refresh family", err)
	}
	if err := revokeFamilyTx(ctx, p.pool, family, now); err != nil {
		return 0, p.wrap("revoke refresh family", err)
	}
	return userID, nil
}

// RevokeUserRefreshTokens revokes the user's unrevoked, unexpired tokens,
// rotated ones included, and counts the live current tokens among them. It
// repeats the UPDATE for the reason revokeFamilyTx does, inside one
// transaction so that the count is of one revocation.
func (p *Postgres) RevokeUserRefreshTokens(ctx context.Context, userID int64, now time.Time) (int, error) {
	sessions := 0
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		sessions = 0
		for range maxRevokePasses {
			rows, err := tx.Query(ctx, pgRevokeUserSQL, now, userID)
			if err != nil {
				return err
			}
			current, err := pgx.CollectRows(rows, pgx.RowTo[bool])
			if err != nil {
				return err
			}
			if len(current) == 0 {
				return nil
			}
			for _, c := range current {
				if c {
					sessions++
				}
			}
		}
		return errors.New("the user's tokens kept changing while they were being revoked")
	})
	if err != nil {
		return 0, p.wrap("revoke user refresh tokens", err)
	}
	return sessions, nil
}

// DenyJTI records jti as revoked until expiresAt; a jti already denied keeps
// its entry.
func (p *Postgres) DenyJTI(ctx context.Context, jti string, expiresAt, now time.Time) error {
	switch {
	case jti == "":
		return errors.New("store: deny jti: empty jti")
	case expiresAt.IsZero():
		return errors.New("store: deny jti: no expiry time")
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO denied_jtis (jti, expires_at, denied_at) VALUES ($1, $2, $3)
		ON CONFLICT (jti) DO NOTHING`, jti, expiresAt, now)
	if err != nil {
		return p.wrap("deny jti", err)
	}
	return nil
}

// DeniedJTIsSince lists the unexpired entries denied after since.
func (p *Postgres) DeniedJTIsSince(ctx context.Context, since, now time.Time) ([]DeniedJTI, error) {
	rows, err := p.pool.Query(ctx, pgDeniedJTIsSinceSQL, since, now)
	if err != nil {
		return nil, p.wrap("denied jtis since", err)
	}
	denied, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeniedJTI, error) {
		var d DeniedJTI
		if err := r.Scan(&d.JTI, &d.ExpiresAt, &d.DeniedAt); err != nil {
			return DeniedJTI{}, err
		}
		d.ExpiresAt, d.DeniedAt = d.ExpiresAt.UTC(), d.DeniedAt.UTC()
		return d, nil
	})
	if err != nil {
		return nil, p.wrap("denied jtis since", err)
	}
	if denied == nil {
		denied = []DeniedJTI{}
	}
	return denied, nil
}

// UserVersionsSince lists the users whose token version changed after since.
func (p *Postgres) UserVersionsSince(ctx context.Context, since time.Time) ([]UserVersion, error) {
	rows, err := p.pool.Query(ctx, pgUserVersionsSinceSQL, since)
	if err != nil {
		return nil, p.wrap("user versions since", err)
	}
	versions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserVersion, error) {
		var v UserVersion
		if err := r.Scan(&v.UserID, &v.Version, &v.ChangedAt); err != nil {
			return UserVersion{}, err
		}
		v.ChangedAt = v.ChangedAt.UTC()
		return v, nil
	})
	if err != nil {
		return nil, p.wrap("user versions since", err)
	}
	if versions == nil {
		versions = []UserVersion{}
	}
	return versions, nil
}

// DeleteExpired deletes expired refresh tokens and denied jtis in batches of
// gcBatch rows, each its own statement, so that no statement holds many row
// locks or runs into the statement timeout. On an error the counts are of
// the rows deleted before it: those deletions are committed.
func (p *Postgres) DeleteExpired(ctx context.Context, now time.Time) (refresh, jtis int, err error) {
	refresh, err = p.deleteInBatches(ctx, pgDeleteExpiredRefreshSQL, now)
	if err != nil {
		return refresh, 0, p.wrap("delete expired refresh tokens", err)
	}
	jtis, err = p.deleteInBatches(ctx, pgDeleteExpiredJTIsSQL, now)
	if err != nil {
		return refresh, jtis, p.wrap("delete expired denied jtis", err)
	}
	return refresh, jtis, nil
}

// deleteInBatches runs query, a DELETE of at most $2 rows expired at $1,
// until it deletes fewer than a full batch.
func (p *Postgres) deleteInBatches(ctx context.Context, query string, now time.Time) (int, error) {
	total := 0
	for {
		tag, err := p.pool.Exec(ctx, query, now, gcBatch)
		if err != nil {
			return total, err
		}
		n := tag.RowsAffected()
		total += int(n)
		if n < gcBatch {
			return total, nil
		}
	}
}

func insertPGRefreshToken(ctx context.Context, q pgQuerier, t RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES ($1, $2, $3, $4, $5, NULL, NULL)`,
		t.Hash, t.FamilyID, t.UserID, t.IssuedAt, t.ExpiresAt)
	return err
}

// scanPGRefreshToken reads the refreshColumns of one row.
func scanPGRefreshToken(r pgx.Row) (RefreshToken, error) {
	var (
		t                RefreshToken
		rotated, revoked *time.Time
	)
	if err := r.Scan(&t.Hash, &t.FamilyID, &t.UserID, &t.IssuedAt, &t.ExpiresAt, &rotated, &revoked); err != nil {
		return RefreshToken{}, err
	}
	t.IssuedAt, t.ExpiresAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC()
	t.RotatedAt, t.RevokedAt = fromPGNullTime(rotated), fromPGNullTime(revoked)
	return t, nil
}
