package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TryLock runs fn while holding the session-level advisory lock whose key
// lockKey derives from name, on a pool connection set aside for the
// purpose. fn's error is returned as is.
//
// The lock belongs to the database session, so it must not go back into
// the pool with the connection: if it cannot be released for certain, the
// connection is closed instead, which releases it.
func (p *Postgres) TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if err := checkLockName(name); err != nil {
		return false, fmt.Errorf("store: try lock: %w", err)
	}
	key := lockKey(name)
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return false, p.wrap("try lock", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		// The server may have taken the lock before the failure reached
		// us (a canceled context, a lost reply).
		discard(ctx, conn)
		return false, p.wrap("try lock", err)
	}
	if !got {
		conn.Release()
		return false, nil
	}
	defer func() {
		rctx, cancel := releaseContext(ctx)
		defer cancel()
		var released bool
		if err := conn.QueryRow(rctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
			discard(rctx, conn)
			return
		}
		conn.Release()
	}()
	return true, fn(ctx)
}

// discard takes conn out of the pool and closes it, ending its session and
// with it every session-level lock the session holds.
func discard(ctx context.Context, conn *pgxpool.Conn) {
	rctx, cancel := releaseContext(ctx)
	defer cancel()
	_ = conn.Hijack().Close(rctx) // the socket is closed even if this fails
}
