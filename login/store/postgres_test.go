package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"frontdoor/login/store"
	"frontdoor/login/store/storetest"
)

// openPostgres opens dsn with the pool settings of cfg and closes it when the
// test ends.
func openPostgres(t *testing.T, dsn string, cfg store.Config) *store.Postgres {
	t.Helper()
	cfg.DSN = dsn
	p, err := store.OpenPostgres(t.Context(), cfg)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openPostgres(t, storetest.PostgresDSN(t), store.Config{})
	})
}

func TestPostgresConformanceMultiHandle(t *testing.T) {
	storetest.RunMultiHandle(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := storetest.PostgresDSN(t)
		return openPostgres(t, dsn, store.Config{}), openPostgres(t, dsn, store.Config{})
	})
}

// rawPostgres connects to dsn without the store, to inspect or disturb what
// the store does.
func rawPostgres(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// wantPostgresVersions lists the versions of the PostgreSQL migration files.
func wantPostgresVersions(t *testing.T) []int64 {
	t.Helper()
	entries, err := os.ReadDir("migrations/postgres")
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

type pgAppliedMigration struct {
	Version   int64
	AppliedAt time.Time
}

func pgAppliedMigrations(t *testing.T, dsn string) []pgAppliedMigration {
	t.Helper()
	rows, err := rawPostgres(t, dsn).Query(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	ms, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pgAppliedMigration])
	if err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
	return ms
}

func checkPostgresApplied(t *testing.T, got []pgAppliedMigration) {
	t.Helper()
	want := wantPostgresVersions(t)
	if len(got) != len(want) {
		t.Fatalf("schema_migrations has %d rows %v, want versions %v", len(got), got, want)
	}
	for i, m := range got {
		if m.Version != want[i] || m.AppliedAt.IsZero() {
			t.Errorf("schema_migrations row %d = %+v, want version %d with a time", i, m, want[i])
		}
	}
}

func TestPostgresMigrationsAppliedOnce(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	p := openPostgres(t, dsn, store.Config{})
	u, err := p.CreatePasswordUser(t.Context(), store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	p.Close()
	first := pgAppliedMigrations(t, dsn)
	checkPostgresApplied(t, first)

	for range 2 {
		p := openPostgres(t, dsn, store.Config{})
		if _, err := p.UserByID(t.Context(), u.ID); err != nil {
			t.Fatalf("UserByID after reopening: %v", err)
		}
		p.Close()
	}
	again := pgAppliedMigrations(t, dsn)
	checkPostgresApplied(t, again)
	for i := range first {
		if !again[i].AppliedAt.Equal(first[i].AppliedAt) {
			t.Errorf("reopening changed schema_migrations row %d from %+v to %+v", i, first[i], again[i])
		}
	}
}

// TestPostgresConcurrentOpen opens a new database from several goroutines
// at once, as replicas starting together would: each must succeed, and each
// migration must be applied once.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 4
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			p, err := store.OpenPostgres(t.Context(), store.Config{DSN: dsn})
			if err == nil {
				err = p.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("OpenPostgres %d: %v", i, err)
		}
	}
	checkPostgresApplied(t, pgAppliedMigrations(t, dsn))
}

// TestPostgresNewerSchemaAccepted opens a database that a newer build has
// migrated further: unlike SQLite, PostgreSQL is shared by replicas that are
// upgraded one by one, so the old build must keep working.
func TestPostgresNewerSchemaAccepted(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	openPostgres(t, dsn, store.Config{}).Close()
	if _, err := rawPostgres(t, dsn).Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (999999, now())`); err != nil {
		t.Fatalf("insert version: %v", err)
	}
	p := openPostgres(t, dsn, store.Config{})
	if _, err := p.CreatePasswordUser(t.Context(), store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()}); err != nil {
		t.Errorf("CreatePasswordUser on a newer schema: %v", err)
	}
	got := pgAppliedMigrations(t, dsn)
	if last := got[len(got)-1]; last.Version != 999999 {
		t.Errorf("newest schema_migrations row = %+v, want the newer build's 999999 kept", last)
	}
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestPostgresUnreachable checks that a server that cannot be reached is
// ErrUnavailable (the login API then answers 503), and that the error does
// not give the DSN's password away.
func TestPostgresUnreachable(t *testing.T) {
	dsn := "postgres://frontdoor:s3cret-pw@" + closedPort(t) + "/frontdoor?sslmode=disable"
	cfg := store.Config{Driver: store.DriverPostgres, DSN: dsn, ConnectTimeout: time.Second}
	opens := []struct {
		name string
		open func() (store.Store, error)
	}{
		{"OpenPostgres", func() (store.Store, error) {
			p, err := store.OpenPostgres(t.Context(), cfg)
			if p == nil {
				return nil, err
			}
			return p, err
		}},
		{"Open", func() (store.Store, error) { return store.Open(t.Context(), cfg) }},
	}
	for _, o := range opens {
		t.Run(o.name, func(t *testing.T) {
			s, err := o.open()
			if err == nil {
				s.Close()
				t.Fatal("opening an unreachable server succeeded")
			}
			if s != nil {
				t.Errorf("returned a non-nil Store %T with its error", s)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("error = %v, want ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error = %q repeats the DSN's password", err)
			}
		})
	}
}

// TestPostgresServerGoneAfterOpen ends every session of the store from
// outside, as a server restart or failover does: calls fail with
// ErrUnavailable (or succeed on a fresh connection), and the store recovers
// without being reopened.
func TestPostgresServerGoneAfterOpen(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	p := openPostgres(t, dsn, store.Config{MaxConns: 2})
	ctx := t.Context()
	u, err := p.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	admin := rawPostgres(t, dsn)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatalf("terminate sessions: %v", err)
	}
	var last error
	for range 10 {
		_, last = p.UserByID(ctx, u.ID)
		if last == nil {
			break
		}
		if !errors.Is(last, store.ErrUnavailable) {
			t.Fatalf("UserByID after the sessions ended = %v, want ErrUnavailable or success", last)
		}
	}
	if last != nil {
		t.Fatalf("UserByID kept failing after the sessions ended: %v", last)
	}
}

func TestPostgresPoolSettings(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	tests := []struct {
		name                string
		cfg                 store.Config
		wantTimeout         string
		wantMaxConns        int32
		wantConnectTimeout  time.Duration
		defaultsBeforeValue bool
	}{
		{"zero values", store.Config{}, "0", store.DefaultMaxConns, store.DefaultConnectTimeout, false},
		{"defaults", store.Config{}, "5s", store.DefaultMaxConns, store.DefaultConnectTimeout, true},
		{"set", store.Config{MaxConns: 3, ConnectTimeout: 2 * time.Second, StatementTimeout: 1500 * time.Millisecond},
			"1500ms", 3, 2 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.defaultsBeforeValue {
				cfg.ApplyDefaults()
			}
			pool := store.PostgresPool(openPostgres(t, dsn, cfg))
			if got := pool.Config().MaxConns; got != tt.wantMaxConns {
				t.Errorf("MaxConns = %d, want %d", got, tt.wantMaxConns)
			}
			if got := pool.Config().ConnConfig.ConnectTimeout; got != tt.wantConnectTimeout {
				t.Errorf("ConnectTimeout = %v, want %v", got, tt.wantConnectTimeout)
			}
			// Every pooled session has the setting, not only the first.
			conns := acquireAll(t, pool, int(tt.wantMaxConns))
			for i, c := range conns {
				var got string
				if err := c.QueryRow(t.Context(), `SHOW statement_timeout`).Scan(&got); err != nil {
					t.Fatalf("SHOW statement_timeout: %v", err)
				}
				if got != tt.wantTimeout {
					t.Errorf("connection %d: statement_timeout = %q, want %q", i, got, tt.wantTimeout)
				}
			}
		})
	}
}

// acquireAll acquires n connections of pool at once (so that they are n
// different sessions) and releases them when the test ends.
func acquireAll(t *testing.T, pool *pgxpool.Pool, n int) []*pgxpool.Conn {
	t.Helper()
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		c, err := pool.Acquire(t.Context())
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Release()
		}
	})
	return conns
}

// TestPostgresStatementTimeout has a write wait for a row lock that another
// session holds: the statement timeout ends the wait, and the error is
// ErrUnavailable, not a hang.
func TestPostgresStatementTimeout(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	p := openPostgres(t, dsn, store.Config{StatementTimeout: 200 * time.Millisecond})
	ctx := t.Context()
	u, err := p.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: time.Now()})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	tx, err := rawPostgres(t, dsn).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, u.ID); err != nil {
		t.Fatalf("lock the user: %v", err)
	}
	if _, err := p.SetRoles(ctx, u.ID, []string{"editor"}, time.Now()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("SetRoles of a locked user = %v, want ErrUnavailable", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetRoles(ctx, u.ID, []string{"editor"}, time.Now()); err != nil {
		t.Errorf("SetRoles once the lock is gone: %v", err)
	}
}

// TestPostgresHotQueriesUseIndexes checks the plans of the statements that
// run on every refresh or every few seconds, on tables filled and analyzed
// like those of a busy deployment, with the parameter values they run with:
// none may scan a whole table. Sequential scans are priced out so that the
// planner shows which index it can use; a statement that no index serves is
// still planned as one.
func TestPostgresHotQueriesUseIndexes(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	openPostgres(t, dsn, store.Config{}).Close()
	conn := rawPostgres(t, dsn)
	ctx := t.Context()
	// 2,000 users, one in 100 with a token version change; 10,000 refresh
	// tokens in families of 5, most rotated, a third revoked, spread over
	// 60 days of expiry; 10,000 denied jtis over a day.
	_, err := conn.Exec(ctx, `
		INSERT INTO users (username, roles, created_at, updated_at, token_version, token_version_at)
		SELECT 'u' || g, '{}', now(), now(),
			CASE WHEN g % 100 = 0 THEN 1 ELSE 0 END,
			CASE WHEN g % 100 = 0 THEN now() - make_interval(secs => g) END
		FROM generate_series(1, 2000) g;
		INSERT INTO users (appid, openid, roles, created_at, updated_at)
		SELECT 'wxapp', 'openid-' || g, '{}', now(), now() FROM generate_series(1, 2000) g;
		INSERT INTO refresh_tokens (hash, family_id, user_id, issued_at, expires_at, rotated_at, revoked_at)
		SELECT sha256(g::text::bytea), 'fam-' || (g / 5), (SELECT min(id) FROM users) + g % 2000,
			now() - interval '30 days', now() + make_interval(days => g % 60 - 20),
			CASE WHEN g % 5 <> 4 THEN now() END, CASE WHEN g % 3 = 0 THEN now() END
		FROM generate_series(1, 10000) g;
		INSERT INTO denied_jtis (jti, expires_at, denied_at)
		SELECT 'jti-' || g, now() + make_interval(secs => g % 7200 - 3600), now() - make_interval(secs => g % 86400)
		FROM generate_series(1, 10000) g;
		ANALYZE;
		SET enable_seqscan = off;`)
	if err != nil {
		t.Fatalf("fill the tables: %v", err)
	}
	var firstID int64
	if err := conn.QueryRow(ctx, `SELECT min(id) FROM users`).Scan(&firstID); err != nil {
		t.Fatal(err)
	}
	// args are each statement's parameters as it runs them, in SQL.
	args := map[string]string{
		"consume refresh token":         `now(), sha256('7'::bytea)`,
		"revoke family":                 `now(), 'fam-7'`,
		"revoke user":                   fmt.Sprintf("now(), %d", firstID+7),
		"denied jtis since":             `now() - interval '10 seconds', now()`,
		"user versions since":           `now() - interval '10 seconds'`,
		"delete expired refresh tokens": `now(), 1000`,
		"delete expired jtis":           `now(), 1000`,
		"update wechat user": `'wxapp', 'openid-7', '\x00'::bytea, NULL::text, NULL::text, NULL::text,
			NULL::integer, now()`,
	}
	for i, q := range store.PostgresHotQueries() {
		t.Run(q.Name, func(t *testing.T) {
			a, ok := args[q.Name]
			if !ok {
				t.Fatalf("no parameters for %q in the test", q.Name)
			}
			name := fmt.Sprintf("hot_%d", i)
			if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+q.SQL); err != nil {
				t.Fatalf("PREPARE: %v", err)
			}
			rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+a+")", pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatalf("EXPLAIN: %v", err)
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, q.Index) {
				t.Errorf("plan does not use %s:\n%s", q.Index, text)
			}
			if strings.Contains(text, "Seq Scan") {
				t.Errorf("plan scans a table:\n%s", text)
			}
		})
	}
}

// TestPostgresTryLockReleased checks that TryLock gives the session lock
// back whatever fn does, so that it never stays with a pooled connection:
// after fn failed, after fn's context was canceled, and on a pool of one
// connection, where a leaked lock would be re-entered by the next caller.
func TestPostgresTryLockReleased(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	p := openPostgres(t, dsn, store.Config{MaxConns: 1})
	other := openPostgres(t, dsn, store.Config{})
	admin := rawPostgres(t, dsn)
	heldLocks := func() int {
		t.Helper()
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatalf("pg_locks: %v", err)
		}
		return n
	}
	fns := []struct {
		name string
		fn   func(ctx context.Context, cancel context.CancelFunc) error
	}{
		{"fn succeeds", func(context.Context, context.CancelFunc) error { return nil }},
		{"fn fails", func(context.Context, context.CancelFunc) error { return errors.New("job failed") }},
		{"context canceled in fn", func(ctx context.Context, cancel context.CancelFunc) error {
			cancel()
			return ctx.Err()
		}},
	}
	for _, f := range fns {
		t.Run(f.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ran, err := p.TryLock(ctx, "rotate-keys", func(ctx context.Context) error {
				if n := heldLocks(); n != 1 {
					t.Errorf("%d advisory locks held inside fn, want 1", n)
				}
				return f.fn(ctx, cancel)
			})
			if !ran {
				t.Fatalf("TryLock = %v, %v; want ran", ran, err)
			}
			if n := heldLocks(); n != 0 {
				t.Errorf("%d advisory locks held after TryLock returned, want 0", n)
			}
			if ran, err := other.TryLock(t.Context(), "rotate-keys", func(context.Context) error { return nil }); !ran || err != nil {
				t.Errorf("TryLock on another store after the first returned = %v, %v; want ran", ran, err)
			}
		})
	}
	// The lock is an advisory lock whose key all replicas derive alike.
	var got bool
	if err := admin.QueryRow(t.Context(), `SELECT pg_try_advisory_lock($1)`, store.LockKey("rotate-keys")).Scan(&got); err != nil || !got {
		t.Fatalf("pg_try_advisory_lock = %v, %v", got, err)
	}
	if ran, err := p.TryLock(t.Context(), "rotate-keys", func(context.Context) error { return nil }); ran || err != nil {
		t.Errorf("TryLock while another session holds the advisory lock = %v, %v; want false, nil", ran, err)
	}
}

func TestOpenPostgresInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  store.Config
	}{
		{"malformed dsn", store.Config{DSN: "postgres://u:s3cret-pw@db:notaport/x"}},
		{"not a dsn", store.Config{DSN: "s3cret-pw"}},
		{"empty dsn", store.Config{}},
		{"negative max conns", store.Config{DSN: "postgres://u:s3cret-pw@127.0.0.1/x", MaxConns: -1}},
		{"negative statement timeout", store.Config{DSN: "postgres://u:s3cret-pw@127.0.0.1/x", StatementTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := store.OpenPostgres(t.Context(), tt.cfg)
			if err == nil {
				p.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("OpenPostgres = %v, want a configuration error, not ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("OpenPostgres = %q repeats the DSN's password", err)
			}
		})
	}
}
