package store_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"frontdoor/login/store"
	"frontdoor/login/store/storetest"
)

func openTemp(t *testing.T, path string) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "frontdoor.db"))
	})
}

func TestSQLiteConformanceMultiHandle(t *testing.T) {
	storetest.RunMultiHandle(t, func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "frontdoor.db")
		return openTemp(t, path), openTemp(t, path)
	})
}

// rawDB opens path without the store, to inspect what the store wrote.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type appliedMigration struct {
	version, appliedAt int64
}

func appliedMigrations(t *testing.T, path string) []appliedMigration {
	t.Helper()
	rows, err := rawDB(t, path).QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	defer rows.Close()
	var ms []appliedMigration
	for rows.Next() {
		var m appliedMigration
		if err := rows.Scan(&m.version, &m.appliedAt); err != nil {
			t.Fatalf("scan schema_migrations: %v", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
	return ms
}

// wantVersions lists the versions of the migration files on disk, which
// the binary embeds.
func wantVersions(t *testing.T) []int64 {
	t.Helper()
	entries, err := os.ReadDir("migrations/sqlite")
	if err != nil {
		t.Fatalf("read migrations: %v", err)
	}
	var vs []int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err != nil {
			t.Fatalf("migration file %s: %v", e.Name(), err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		t.Fatal("no migration files")
	}
	return vs
}

func checkApplied(t *testing.T, got []appliedMigration) {
	t.Helper()
	want := wantVersions(t)
	if len(got) != len(want) {
		t.Fatalf("schema_migrations has %d rows %v, want versions %v", len(got), got, want)
	}
	for i, m := range got {
		if m.version != want[i] || m.appliedAt <= 0 {
			t.Errorf("schema_migrations row %d = %+v, want version %d with a time", i, m, want[i])
		}
	}
}

func TestMigrationsAppliedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	s, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	u, err := s.CreatePasswordUser(t.Context(), store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	first := appliedMigrations(t, path)
	checkApplied(t, first)

	for range 2 {
		s := openTemp(t, path)
		if _, err := s.UserByID(t.Context(), u.ID); err != nil {
			t.Fatalf("UserByID after reopening: %v", err)
		}
		s.Close()
	}
	again := appliedMigrations(t, path)
	checkApplied(t, again)
	for i := range first {
		if again[i] != first[i] {
			t.Errorf("reopening changed schema_migrations row %d from %+v to %+v", i, first[i], again[i])
		}
	}
}

func TestMigrationsConcurrentOpenOfNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	const n = 4
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := store.OpenSQLite(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("OpenSQLite %d: %v", i, err)
		}
	}
	checkApplied(t, appliedMigrations(t, path))
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdoor.db")
	openTemp(t, path).Close()
	if _, err := rawDB(t, path).ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (999999, 1)`); err != nil {
		t.Fatalf("insert version: %v", err)
	}
	s, err := store.OpenSQLite(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite succeeded on a database migrated by a newer build")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("OpenSQLite error = %v, want it to say the schema is newer", err)
	}
}

// TestPragmas checks the settings on several pooled connections at once: a
// setting applied only to the first connection would show up here.
func TestPragmas(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "frontdoor.db"))
	read, write := store.SQLitePools(s)
	ctx := t.Context()
	type pooled struct {
		name           string
		conn           *sql.Conn
		queryOnly      string
		autoCheckpoint string
	}
	var conns []pooled
	for i := range 3 {
		c, err := read.Conn(ctx)
		if err != nil {
			t.Fatalf("read Conn: %v", err)
		}
		conns = append(conns, pooled{fmt.Sprintf("reader %d", i), c, "1", "1000"})
	}
	c, err := write.Conn(ctx)
	if err != nil {
		t.Fatalf("write Conn: %v", err)
	}
	// The writer checkpoints only as a backstop; a connection of its own
	// does it (TestCheckpointsLeaveTheWriter).
	conns = append(conns, pooled{"writer", c, "0", "10000"})
	defer func() {
		for _, c := range conns {
			c.conn.Close()
		}
	}()
	for _, c := range conns {
		want := []struct {
			pragma, value string
		}{
			{"journal_mode", "wal"},
			{"busy_timeout", fmt.Sprint(store.BusyTimeout.Milliseconds())},
			{"foreign_keys", "1"},
			{"synchronous", "1"}, // NORMAL
			{"query_only", c.queryOnly},
			{"wal_autocheckpoint", c.autoCheckpoint},
		}
		for _, w := range want {
			var got string
			if err := c.conn.QueryRowContext(ctx, "PRAGMA "+w.pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", c.name, w.pragma, err)
			}
			if got != w.value {
				t.Errorf("%s: PRAGMA %s = %q, want %q", c.name, w.pragma, got, w.value)
			}
		}
	}
}

// TestCheckpointsLeaveTheWriter checks that commits reach the database file
// itself, not only its write-ahead log, although they are far fewer pages
// than the writer's own automatic checkpoint waits for.
func TestCheckpointsLeaveTheWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "frontdoor.db")
	s := openTemp(t, path)
	ctx := t.Context()
	for i := range 3 {
		if _, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: fmt.Sprint("user", i), Now: time.Now()}); err != nil {
			t.Fatalf("CreatePasswordUser: %v", err)
		}
	}
	// A copy of the file without its log holds what was checkpointed. The
	// copy may catch a checkpoint half-way; it is then retried.
	copyPath := filepath.Join(dir, "copy.db")
	var users int
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		users, err = checkpointedUsers(ctx, path, copyPath)
		if err == nil && users == 3 {
			return
		}
	}
	t.Fatalf("the database file holds %d of 3 committed users after 10 s (last error: %v)", users, err)
}

// checkpointedUsers counts the users in a copy of the database file at
// path, made at copyPath without the write-ahead log.
func checkpointedUsers(ctx context.Context, path, copyPath string) (int, error) {
	for _, p := range []string{copyPath, copyPath + "-wal", copyPath + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(copyPath, b, 0o600); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", copyPath)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

func TestOpenSQLiteCreatesParentDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "c")
	path := filepath.Join(dir, "frontdoor.db")
	s := openTemp(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if runtime.GOOS != "windows" {
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("database file mode = %v, want 0600: it holds private keys", perm)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatalf("directory: %v", err)
		}
		if perm := di.Mode().Perm(); perm != 0o700 {
			t.Errorf("created directory mode = %v, want 0700", perm)
		}
	}
}

// TestOpenSQLiteURICharacters checks that characters with a meaning in a
// file: URI are taken literally in the path.
func TestOpenSQLiteURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd?dir#x%41 y")
	path := filepath.Join(dir, "front door?mode=ro.db")
	s := openTemp(t, path)
	if _, err := s.CreatePasswordUser(t.Context(), store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()}); err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the literal path: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "front door?mode=ro.db") {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
}

func TestOpenSQLiteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	s := openTemp(t, "data/frontdoor.db")
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := os.Stat(filepath.Join("data", "frontdoor.db")); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenSQLiteErrors(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notADB := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(notADB, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		path        string
		unavailable bool
	}{
		{"empty", "", false},
		{"memory", ":memory:", false},
		{"uri", "file:frontdoor.db?mode=memory", false},
		{"parent is a file", filepath.Join(notADir, "frontdoor.db"), true},
		{"not a database", notADB, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.OpenSQLite(t.Context(), tt.path)
			if err == nil {
				s.Close()
				t.Fatalf("OpenSQLite(%q) succeeded, want an error", tt.path)
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tt.unavailable {
				t.Errorf("OpenSQLite(%q) = %v; errors.Is(ErrUnavailable) = %v, want %v", tt.path, err, got, tt.unavailable)
			}
		})
	}
}

func TestOpenSQLiteCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "frontdoor.db"))
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite with a canceled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("OpenSQLite with a canceled context = %v, want context.Canceled", err)
	}
}

const crossProcessEnv = "FRONTDOOR_STORE_CROSS_PROCESS_DB"

// TestCrossProcess runs several processes against one new database file at
// once: they race to migrate it, to create the same WeChat users and to
// create the first signing key.
func TestCrossProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	const procs = 3
	var (
		cmds [procs]*exec.Cmd
		outs [procs]bytes.Buffer
		errs [procs]bytes.Buffer
	)
	for i := range procs {
		cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestCrossProcessChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crossProcessEnv+"="+path)
		cmd.Stdout, cmd.Stderr = &outs[i], &errs[i]
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child %d: %v", i, err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\nstdout:\n%s\nstderr:\n%s", i, err, outs[i].String(), errs[i].String())
		}
	}
	created := make(map[string]int)
	keys := 0
	for i := range procs {
		sc := bufio.NewScanner(&outs[i])
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "RESULT" && f[1] == "created":
				created[f[2]]++
			case len(f) == 2 && f[0] == "RESULT" && f[1] == "key":
				keys++
			}
		}
	}
	if len(created) != crossProcessUsers {
		t.Errorf("%d openids reported created, want %d", len(created), crossProcessUsers)
	}
	for openid, n := range created {
		if n != 1 {
			t.Errorf("%s created by %d processes, want 1", openid, n)
		}
	}
	if keys != 1 {
		t.Errorf("%d processes inserted a signing key, want 1", keys)
	}
	s := openTemp(t, path)
	users, err := s.Users(t.Context())
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	if len(users) != crossProcessUsers {
		t.Errorf("%d users in the shared database, want %d", len(users), crossProcessUsers)
	}
	ks, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	if len(ks) != 1 {
		t.Errorf("%d signing keys in the shared database, want 1", len(ks))
	}
	checkApplied(t, appliedMigrations(t, path))
}

const crossProcessUsers = 10

// TestCrossProcessChild is the body of one TestCrossProcess child; run
// directly, it does nothing.
func TestCrossProcessChild(t *testing.T) {
	path := os.Getenv(crossProcessEnv)
	if path == "" {
		t.Skip("runs only as a child of TestCrossProcess")
	}
	ctx := t.Context()
	s, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer s.Close()
	pid := os.Getpid()
	inserted, err := s.EnsureSigningKey(ctx, func() (store.SigningKey, error) {
		now := time.Now()
		return store.SigningKey{ID: fmt.Sprintf("kid-%d", pid), PrivatePEM: []byte("pem"), CreatedAt: now, ActivatedAt: now}, nil
	})
	if err != nil {
		t.Fatalf("EnsureSigningKey: %v", err)
	}
	if inserted {
		fmt.Println("RESULT key")
	}
	for i := range crossProcessUsers {
		openid := fmt.Sprintf("openid-%d", i)
		_, created, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{
			AppID: "wxapp", OpenID: openid, SessionKey: fmt.Appendf(nil, "key-%d", pid), Now: time.Now(),
		})
		if err != nil {
			t.Fatalf("UpsertWeChatUser: %v", err)
		}
		if created {
			fmt.Println("RESULT created", openid)
		}
	}
}
