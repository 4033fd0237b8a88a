package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the environment variable that holds the DSN of a
// PostgreSQL server for tests, as a user allowed to create databases.
// .ci/postgres start prints it.
const PostgresEnv = "FRONTDOOR_TEST_POSTGRES"

// PostgresDSN returns the DSN of a new, empty PostgreSQL database for the
// test, and drops the database (closing whatever connections are left) when
// the test ends. It skips the test if PostgresEnv is not set.
func PostgresDSN(t *testing.T) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		t.Skip(PostgresEnv + " is not set: skipping PostgreSQL tests (.ci/postgres start sets it)")
	}
	// Lower case: unquoted identifiers fold to it, so the name also works
	// when typed into psql.
	name := "frontdoor_test_" + strings.ToLower(rand.Text())
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(t.Context(), admin, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return dsn
}

// withDatabase returns dsn pointing at the database name instead of its own.
func withDatabase(dsn, name string) (string, error) {
	if l := strings.ToLower(dsn); strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url's errors quote the URL, and with it any password.
			return "", errors.New("not a valid URL")
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// In a key=value string a later key overrides an earlier one.
	return dsn + " dbname=" + name, nil
}

// adminExec runs one statement on a connection of its own: CREATE and DROP
// DATABASE cannot run inside a transaction or a pool's prepared statement.
func adminExec(ctx context.Context, dsn, stmt string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, stmt)
	return err
}
