package store

import (
	"context"
	"errors"
	"hash/fnv"
	"time"
)

// releaseTimeout bounds the release of a lock after fn returns. Release runs
// on a context detached from the caller's, which may be done by then (fn ran
// until it was canceled), yet the lock should still be given back at once
// rather than left to lapse.
const releaseTimeout = 5 * time.Second

// lockKey is the PostgreSQL advisory lock key of the TryLock lock called
// name: stable across processes and builds, so that every replica derives
// the same key.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("frontdoor:" + name)) // a hash.Hash never fails to write
	return int64(h.Sum64())
}

// checkLockName rejects a name that cannot name a lock.
func checkLockName(name string) error {
	if name == "" {
		return errors.New("empty lock name")
	}
	return nil
}

// releaseContext is the context a lock is released on once fn returned.
func releaseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
}
