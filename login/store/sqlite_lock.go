package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// LockLease is how long a SQLite TryLock lock lasts if its holder never
// releases it (the process died): after it, the next TryLock takes the lock
// over.
const LockLease = time.Minute

// TryLock runs fn while holding the lease row of the lock called name, if
// no live lease exists. One statement takes the lease when the row is absent
// or expired, under the database's write lock, so of concurrent callers in
// any process one wins; the transaction does not span fn, which would stall
// every other writer. fn's error is returned as is.
func (s *SQLite) TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if err := checkLockName(name); err != nil {
		return false, fmt.Errorf("store: try lock: %w", err)
	}
	holder := rand.Text()
	now := time.Now()
	res, err := s.write.ExecContext(ctx, `INSERT INTO locks (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE locks.expires_at <= ?`,
		name, holder, now.Add(LockLease).UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, s.wrap("try lock", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("try lock", err)
	}
	if n == 0 {
		return false, nil
	}
	defer func() {
		rctx, cancel := releaseContext(ctx)
		defer cancel()
		// Matching the holder keeps a holder whose lease lapsed from
		// deleting its successor's. A failure leaves the lease to lapse.
		_, _ = s.write.ExecContext(rctx, `DELETE FROM locks WHERE name = ? AND holder = ?`, name, holder)
	}()
	return true, fn(ctx)
}
