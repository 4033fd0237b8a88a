package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"frontdoor/login/store"
)

// TestSQLiteTryLockLease checks the lease row behind SQLite's TryLock: a
// live lease of another holder blocks, an expired one (its holder died) is
// taken over, and release deletes only the caller's own row.
func TestSQLiteTryLockLease(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	s := openTemp(t, path)
	db := rawDB(t, path)
	now := time.Now()
	leases := func() map[string]string {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT name, holder FROM locks`)
		if err != nil {
			t.Fatalf("query locks: %v", err)
		}
		defer rows.Close()
		m := make(map[string]string)
		for rows.Next() {
			var name, holder string
			if err := rows.Scan(&name, &holder); err != nil {
				t.Fatal(err)
			}
			m[name] = holder
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, l := range []struct {
		name    string
		expires time.Time
	}{
		{"live", now.Add(time.Hour)},
		{"expired", now.Add(-time.Second)},
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO locks (name, holder, expires_at) VALUES (?, 'dead-process', ?)`,
			l.name, l.expires.UnixMicro()); err != nil {
			t.Fatalf("insert lease: %v", err)
		}
	}

	ran, err := s.TryLock(ctx, "live", func(context.Context) error {
		t.Error("fn ran under another holder's live lease")
		return nil
	})
	if ran || err != nil {
		t.Errorf("TryLock under a live lease = %v, %v; want false, nil", ran, err)
	}

	ran, err = s.TryLock(ctx, "expired", func(context.Context) error {
		holder := leases()["expired"]
		if holder == "" || holder == "dead-process" {
			t.Errorf("holder of the taken-over lease = %q, want a new one", holder)
		}
		// The lease lapses while fn still runs, and another process takes
		// the lock over: the first holder's release must leave its row.
		if _, err := db.ExecContext(ctx, `UPDATE locks SET holder = 'successor' WHERE name = 'expired'`); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("TryLock of an expired lease = %v, %v; want ran", ran, err)
	}
	if got := leases(); got["expired"] != "successor" || got["live"] != "dead-process" {
		t.Errorf("leases after the release = %v, want the successor's and the live one kept", got)
	}

	before := time.Now()
	if ran, err := s.TryLock(ctx, "fresh", func(context.Context) error {
		after := time.Now()
		var expires int64
		if err := db.QueryRowContext(ctx, `SELECT expires_at FROM locks WHERE name = 'fresh'`).Scan(&expires); err != nil {
			t.Fatalf("no lease row while fn runs: %v", err)
		}
		if lo, hi := before.Add(store.LockLease).UnixMicro(), after.Add(store.LockLease).UnixMicro(); expires < lo || expires > hi {
			t.Errorf("lease expires at %d, want LockLease after the call, within [%d, %d]", expires, lo, hi)
		}
		return nil
	}); !ran || err != nil {
		t.Fatalf("TryLock(fresh) = %v, %v; want ran", ran, err)
	}
	if _, ok := leases()["fresh"]; ok {
		t.Error("the lease row outlived TryLock")
	}
}
