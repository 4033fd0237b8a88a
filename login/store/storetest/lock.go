package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"frontdoor/login/store"
)

// tryLock calls s.TryLock(name) with an fn that records that it ran and
// returns fnErr.
func tryLock(ctx context.Context, s store.Store, name string, fnErr error) (ran, called bool, err error) {
	ran, err = s.TryLock(ctx, name, func(context.Context) error {
		called = true
		return fnErr
	})
	return ran, called, err
}

func testTryLock(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 2 {
		ran, called, err := tryLock(ctx, s, "rotate-keys", nil)
		if err != nil || !ran || !called {
			t.Fatalf("TryLock %d of a free lock = ran %v, fn called %v, %v; want fn run", i, ran, called, err)
		}
	}

	errJob := errors.New("rotation failed")
	ran, called, err := tryLock(ctx, s, "rotate-keys", errJob)
	if !ran || !called || err != errJob {
		t.Errorf("TryLock with a failing fn = ran %v, fn called %v, %v; want ran and fn's error as is", ran, called, err)
	}
	// A failing fn released the lock too.
	if ran, called, err := tryLock(ctx, s, "rotate-keys", nil); err != nil || !ran || !called {
		t.Errorf("TryLock after a failing fn = ran %v, fn called %v, %v; want fn run", ran, called, err)
	}

	// Within fn the lock is held, even against the holder itself; other
	// names are free.
	ran, err = s.TryLock(ctx, "rotate-keys", func(ctx context.Context) error {
		ran, called, err := tryLock(ctx, s, "rotate-keys", nil)
		if err != nil || ran || called {
			t.Errorf("nested TryLock of the held lock = ran %v, fn called %v, %v; want false, fn not called, nil", ran, called, err)
		}
		ran, called, err = tryLock(ctx, s, "gc", nil)
		if err != nil || !ran || !called {
			t.Errorf("nested TryLock of another lock = ran %v, fn called %v, %v; want fn run", ran, called, err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("TryLock = %v, %v; want ran", ran, err)
	}

	if ran, called, err := tryLock(ctx, s, "", nil); err == nil || ran || called {
		t.Errorf("TryLock of an empty name = ran %v, fn called %v, %v; want an error, fn not called", ran, called, err)
	}
}

// testMultiTryLock holds a lock on a while b tries it, as two replicas
// would.
func testMultiTryLock(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	ran, err := a.TryLock(ctx, "rotate-keys", func(ctx context.Context) error {
		ran, called, err := tryLock(ctx, b, "rotate-keys", nil)
		if err != nil || ran || called {
			t.Errorf("TryLock on b of the lock a holds = ran %v, fn called %v, %v; want false, fn not called, nil", ran, called, err)
		}
		ran, called, err = tryLock(ctx, b, "gc", nil)
		if err != nil || !ran || !called {
			t.Errorf("TryLock on b of another lock = ran %v, fn called %v, %v; want fn run", ran, called, err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("TryLock on a = %v, %v; want ran", ran, err)
	}
	// Released by a, the lock is b's to take, and then not a's.
	ran, err = b.TryLock(ctx, "rotate-keys", func(ctx context.Context) error {
		if ran, called, err := tryLock(ctx, a, "rotate-keys", nil); err != nil || ran || called {
			t.Errorf("TryLock on a of the lock b holds = ran %v, fn called %v, %v; want false, fn not called, nil", ran, called, err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Errorf("TryLock on b after a released the lock = %v, %v; want ran", ran, err)
	}
	errJob := errors.New("job failed")
	if ran, _, err := tryLock(ctx, b, "rotate-keys", errJob); !ran || !errors.Is(err, errJob) {
		t.Errorf("TryLock on b with a failing fn = %v, %v; want ran and fn's error", ran, err)
	}
	if ran, called, err := tryLock(ctx, a, "rotate-keys", nil); err != nil || !ran || !called {
		t.Errorf("TryLock on a after b's fn failed = ran %v, fn called %v, %v; want fn run", ran, called, err)
	}
}

// testMultiTryLockConcurrent has 8 goroutines spread over a and b try one
// lock repeatedly: fn must never run in two of them at once.
func testMultiTryLockConcurrent(t *testing.T, a, b store.Store) {
	const (
		n      = 8
		rounds = 5
	)
	ctx := t.Context()
	var (
		wg              sync.WaitGroup
		start           = make(chan struct{})
		holders, maxRun atomic.Int32
		runs            atomic.Int32
		errs            [n]error
	)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			for range rounds {
				_, err := s.TryLock(ctx, "rotate-keys", func(context.Context) error {
					h := holders.Add(1)
					defer holders.Add(-1)
					for {
						m := maxRun.Load()
						if h <= m || maxRun.CompareAndSwap(m, h) {
							break
						}
					}
					runs.Add(1)
					// Hold the lock long enough for the others to try it.
					time.Sleep(5 * time.Millisecond)
					return nil
				})
				if err != nil {
					errs[i] = fmt.Errorf("TryLock: %w", err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if m := maxRun.Load(); m != 1 {
		t.Errorf("fn ran in %d goroutines at once, want 1", m)
	}
	if runs.Load() == 0 {
		t.Error("fn never ran")
	}
}
