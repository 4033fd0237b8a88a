package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"frontdoor/login/store"
)

// fakeKeyStore implements KeyStore in memory with the semantics documented
// on store.Store.
type fakeKeyStore struct {
	mu        sync.Mutex
	keys      []store.SigningKey
	generated int
	fail      error // returned by every method while set
	locks     map[string]bool
	lockRuns  int // TryLock calls that took their lock
	reads     int // SigningKeys calls
}

func (f *fakeKeyStore) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.fail != nil {
		return nil, f.fail
	}
	out := slices.Clone(f.keys)
	slices.SortStableFunc(out, func(a, b store.SigningKey) int { return b.ActivatedAt.Compare(a.ActivatedAt) })
	return out, nil
}

func (f *fakeKeyStore) ActivateSigningKey(ctx context.Context, k store.SigningKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for _, have := range f.keys {
		if have.ID == k.ID {
			return fmt.Errorf("key %s: %w", k.ID, store.ErrConflict)
		}
	}
	for i := range f.keys {
		if f.keys[i].Active() {
			f.keys[i].RetiredAt = k.ActivatedAt
		}
	}
	k.RetiredAt = time.Time{}
	f.keys = append(f.keys, k)
	return nil
}

func (f *fakeKeyStore) EnsureSigningKey(ctx context.Context, generate func() (store.SigningKey, error)) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return false, f.fail
	}
	if slices.ContainsFunc(f.keys, store.SigningKey.Active) {
		return false, nil
	}
	k, err := generate()
	if err != nil {
		return false, err
	}
	f.generated++
	f.keys = append(f.keys, k)
	return true, nil
}

func (f *fakeKeyStore) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	n := len(f.keys)
	f.keys = slices.DeleteFunc(f.keys, func(k store.SigningKey) bool { return !k.Active() && k.RetiredAt.Before(t) })
	return n - len(f.keys), nil
}

// TryLock holds a lock per name in memory, as store.Store's do across
// processes.
func (f *fakeKeyStore) TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	f.mu.Lock()
	if f.locks == nil {
		f.locks = map[string]bool{}
	}
	if f.locks[name] {
		f.mu.Unlock()
		return false, nil
	}
	f.locks[name] = true
	f.lockRuns++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.locks, name)
		f.mu.Unlock()
	}()
	return true, fn(ctx)
}

func (f *fakeKeyStore) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeKeyStore) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeKeyStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

var errStoreDown = errors.New("fake store: down")

// clock is a settable time source for the `now` parameters.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
