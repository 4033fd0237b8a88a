package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// openFiles counts this process's file descriptors open on the database
// at path or its -wal and -shm files.
func openFiles(t *testing.T, path string) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, path) {
			n++
		}
	}
	return n
}

func openWriterTestStore(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "writer.db")
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func writerTestLogin(t *testing.T, s *SQLite, openID string) {
	t.Helper()
	now := time.Now()
	hash := sha256.Sum256([]byte(openID))
	_, _, err := s.StartWeChatSession(t.Context(),
		WeChatLogin{AppID: "wxapp", OpenID: openID, SessionKey: []byte("k"), Now: now},
		RefreshToken{Hash: hash[:], FamilyID: "f-" + openID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("StartWeChatSession: %v", err)
	}
}

// A statement left unfinalised keeps a closed SQLite connection, and its
// files, open: the writer's statements must go when the store closes.
func TestWriterStatementsEndWithTheStore(t *testing.T) {
	s, path := openWriterTestStore(t)
	writerTestLogin(t, s, "o-writer-close")
	if n := openFiles(t, path); n == 0 {
		t.Fatal("no descriptors on the database while the store is open; the count is broken")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := openFiles(t, path); n != 0 {
		t.Errorf("%d descriptors still open on the database after Close", n)
	}
}

// database/sql closes a connection that reports driver.ErrBadConn; the
// writer's statements must not keep it, and its files, alive.
func TestWriterStatementsEndWithADiscardedConnection(t *testing.T) {
	s, path := openWriterTestStore(t)
	writerTestLogin(t, s, "o-writer-bad-0")
	before := openFiles(t, path)
	err := s.writeTx(t.Context(), func(q writeQuerier) error {
		var id int64
		if err := q.queryRow(selectWeChatUserSQL, "wxapp", "o-writer-bad-0").Scan(&id); err != nil {
			return err
		}
		return driver.ErrBadConn
	})
	if !errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("writeTx = %v, want ErrBadConn", err)
	}
	writerTestLogin(t, s, "o-writer-bad-1") // on a new connection
	if after := openFiles(t, path); after != before {
		t.Errorf("%d descriptors on the database after the writer was replaced, %d before", after, before)
	}
}

// The wait for the writer follows the caller's context.
func TestWriteTxWaitsForTheWriterWithinItsContext(t *testing.T) {
	s, _ := openWriterTestStore(t)
	held, err := s.write.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err = s.writeTx(ctx, func(writeQuerier) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Errorf("writeTx while the writer is held = %v, ran %v; want DeadlineExceeded without running", err, ran)
	}
}

// A failed fn rolls back everything it wrote, and the connection stays
// usable.
func TestWriteTxRollsBack(t *testing.T) {
	s, _ := openWriterTestStore(t)
	boom := errors.New("boom")
	err := s.writeTx(t.Context(), func(q writeQuerier) error {
		if _, _, err := upsertWeChatUserTx(q, WeChatLogin{AppID: "wxapp", OpenID: "o-rolled-back", SessionKey: []byte("k"), Now: time.Now()}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("writeTx = %v, want boom", err)
	}
	users, err := s.Users(t.Context())
	if err != nil || len(users) != 0 {
		t.Fatalf("Users = %v, %v; want none after the rollback", users, err)
	}
	writerTestLogin(t, s, "o-after-rollback")
}

func TestWriteQuerierArguments(t *testing.T) {
	s, _ := openWriterTestStore(t)
	cases := []struct {
		name string
		args []any
		want string
	}{
		{"missing", []any{"wxapp"}, "missing argument with index 2"},
		{"unsupported type", []any{"wxapp", time.Now()}, "argument 2: unsupported type time.Time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.writeTx(t.Context(), func(q writeQuerier) error {
				var id int64
				return q.queryRow(selectWeChatUserSQL, c.args...).Scan(&id)
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestScanDriverValue(t *testing.T) {
	var (
		i64  int64
		i    int
		b    bool
		s    string
		bs   []byte
		ns   sql.NullString
		ni   sql.NullInt64
		blob = []byte("blob")
	)
	cases := []struct {
		name    string
		dest    any
		v       driver.Value
		check   func() bool
		wantErr bool
	}{
		{"int64", &i64, int64(42), func() bool { return i64 == 42 }, false},
		{"int", &i, int64(-3), func() bool { return i == -3 }, false},
		{"bool true", &b, int64(1), func() bool { return b }, false},
		{"bool false", &b, int64(0), func() bool { return !b }, false},
		{"text", &s, "hello", func() bool { return s == "hello" }, false},
		{"blob into string", &s, []byte("hi"), func() bool { return s == "hi" }, false},
		{"blob copied", &bs, blob, func() bool { return string(bs) == "blob" && &bs[0] != &blob[0] }, false},
		{"NULL blob", &bs, nil, func() bool { return bs == nil }, false},
		{"NullString", &ns, "x", func() bool { return ns.Valid && ns.String == "x" }, false},
		{"NullString NULL", &ns, nil, func() bool { return !ns.Valid && ns.String == "" }, false},
		{"NullInt64", &ni, int64(7), func() bool { return ni.Valid && ni.Int64 == 7 }, false},
		{"NullInt64 NULL", &ni, nil, func() bool { return !ni.Valid && ni.Int64 == 0 }, false},
		{"NULL into int64", &i64, nil, nil, true},
		{"NULL into string", &s, nil, nil, true},
		{"text into int64", &i64, "42", nil, true},
		{"integer into string", &s, int64(1), nil, true},
		{"float", &i64, 1.5, nil, true},
		{"unsupported destination", &[]string{}, "x", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := driverRow{vals: []driver.Value{c.v}}.Scan(c.dest)
			if c.wantErr {
				if err == nil {
					t.Error("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check() {
				t.Errorf("scanned %v into %T wrongly", c.v, c.dest)
			}
		})
	}
	if err := (driverRow{vals: []driver.Value{int64(1)}}).Scan(&i64, &s); err == nil {
		t.Error("Scan with more destinations than columns succeeded")
	}
}
