package store_test

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"frontdoor/login/store"
)

func hashOf(name string) []byte {
	h := sha256.Sum256([]byte(name))
	return h[:]
}

func newRefresh(userID int64, family, name string, at time.Time) store.RefreshToken {
	return store.RefreshToken{Hash: hashOf(name), FamilyID: family, UserID: userID, IssuedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour)}
}

// TestMigrationUpgradeFrom0001 opens a database that an earlier build
// created and used: its users must keep working and start at token
// version 0.
func TestMigrationUpgradeFrom0001(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	schema, err := os.ReadFile("migrations/sqlite/0001_init.sql")
	if err != nil {
		t.Fatalf("read 0001: %v", err)
	}
	db := rawDB(t, path)
	for _, stmt := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		string(schema),
		`INSERT INTO schema_migrations (version, applied_at) VALUES (1, 1)`,
		`INSERT INTO users (username, password_hash, roles, created_at, updated_at) VALUES ('alice', 'h', '["editor"]', 1, 1)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("set up a version 1 database: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTemp(t, path)
	u, err := s.UserByUsername(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByUsername after the upgrade: %v", err)
	}
	if u.TokenVersion != 0 || !u.TokenVersionAt.IsZero() || !reflect.DeepEqual(u.Roles, []string{"editor"}) {
		t.Errorf("upgraded user = version %d at %v, roles %q; want 0 at the zero time, [editor]", u.TokenVersion, u.TokenVersionAt, u.Roles)
	}
	if vs, err := s.UserVersionsSince(ctx, time.Time{}); err != nil || len(vs) != 0 {
		t.Errorf("UserVersionsSince after the upgrade = %v, %v; want none", vs, err)
	}
	now := time.Now()
	if u, err = s.SetRoles(ctx, u.ID, []string{"author"}, now); err != nil || u.TokenVersion != 1 {
		t.Errorf("SetRoles after the upgrade = version %d, %v; want 1", u.TokenVersion, err)
	}
	if err := s.CreateRefreshToken(ctx, newRefresh(u.ID, "fam", "t0", now)); err != nil {
		t.Errorf("CreateRefreshToken after the upgrade: %v", err)
	}
	checkApplied(t, appliedMigrations(t, path))
}

// TestHotQueriesUseIndexes checks the plans of the statements that run on
// every refresh or every few seconds: none may scan a whole table.
func TestHotQueriesUseIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	openTemp(t, path)
	db := rawDB(t, path)
	for _, q := range store.HotQueries() {
		t.Run(q.Name, func(t *testing.T) {
			// The plan does not depend on the values; unbound parameters
			// would be NULL, which SQLite may plan differently.
			args := make([]any, strings.Count(q.SQL, "?"))
			for i := range args {
				args[i] = int64(1)
			}
			rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.SQL, args...)
			if err != nil {
				t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notUsed int64
				var detail string
				if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
					t.Fatalf("scan plan: %v", err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("plan: %v", err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, q.Index) {
				t.Errorf("plan does not use %s:\n%s", q.Index, text)
			}
			for _, line := range plan {
				if strings.HasPrefix(line, "SCAN ") {
					t.Errorf("plan scans a table:\n%s", text)
				}
			}
		})
	}
}

// TestDeleteExpiredBatches collects more than one batch of each kind.
func TestDeleteExpiredBatches(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	s := openTemp(t, path)
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	const expired, live = 2*store.GCBatch + 1, 3
	now := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	db := rawDB(t, path)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range expired + live {
		exp := now.Add(-time.Duration(i) * time.Second)
		if i >= expired {
			exp = now.Add(time.Hour)
		}
		name := strings.Repeat("x", i+1)
		if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, family_id, user_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hashOf(name), name, u.ID, exp.Add(-time.Hour).UnixMicro(), exp.UnixMicro()); err != nil {
			t.Fatalf("insert refresh token: %v", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO denied_jtis (jti, expires_at, denied_at) VALUES (?, ?, ?)`,
			name, exp.UnixMicro(), exp.Add(-time.Hour).UnixMicro()); err != nil {
			t.Fatalf("insert denied jti: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	refresh, jtis, err := s.DeleteExpired(ctx, now)
	if err != nil || refresh != expired || jtis != expired {
		t.Errorf("DeleteExpired = %d, %d, %v; want %d, %d, nil", refresh, jtis, err, expired, expired)
	}
	for _, table := range []string{"refresh_tokens", "denied_jtis"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != live {
			t.Errorf("%d rows left in %s, want the %d live ones", n, table, live)
		}
	}
}

// TestRevocationTimes checks what the interface cannot show: every token
// of a revoked family carries the time of the first revocation.
func TestRevocationTimes(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	s := openTemp(t, path)
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	at := func(min int) time.Time { return time.Date(2025, time.March, 1, 12, min, 0, 0, time.UTC) }
	rotate := func(old, next string, now time.Time) error {
		_, err := s.RotateRefreshToken(ctx, hashOf(old), newRefresh(0, "", next, now), now)
		return err
	}
	for _, step := range []func() error{
		func() error { return s.CreateRefreshToken(ctx, newRefresh(u.ID, "logout", "l0", at(0))) },
		func() error { return rotate("l0", "l1", at(1)) },
		func() error { return rotate("l1", "l2", at(2)) },
		func() error { return second(s.RevokeRefreshFamily(ctx, hashOf("l1"), at(3))) },
		func() error { return second(s.RevokeRefreshFamily(ctx, hashOf("l2"), at(4))) },
		func() error { return s.CreateRefreshToken(ctx, newRefresh(u.ID, "reuse", "r0", at(0))) },
		func() error { return rotate("r0", "r1", at(1)) },
	} {
		if err := step(); err != nil {
			t.Fatalf("set up: %v", err)
		}
	}
	if err := rotate("r0", "stolen", at(5)); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse of r0 = %v, want ErrRefreshReused", err)
	}
	db := rawDB(t, path)
	for _, c := range []struct {
		family  string
		rows    int
		revoked time.Time
	}{
		{"logout", 3, at(3)},
		{"reuse", 2, at(5)}, // the token the reuse asked for was never stored
	} {
		rows, err := db.QueryContext(ctx, `SELECT revoked_at FROM refresh_tokens WHERE family_id = ?`, c.family)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				t.Fatalf("family %s: %v", c.family, err)
			}
			got = append(got, v)
		}
		rows.Close()
		if len(got) != c.rows {
			t.Errorf("family %s has %d tokens, want %d", c.family, len(got), c.rows)
		}
		for _, v := range got {
			if v != c.revoked.UnixMicro() {
				t.Errorf("family %s: revoked_at %d, want %d (%v)", c.family, v, c.revoked.UnixMicro(), c.revoked)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }
