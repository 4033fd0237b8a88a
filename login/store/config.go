package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Driver names accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DefaultSQLitePath is the database file used when store.dsn is empty.
const DefaultSQLitePath = "data/frontdoor.db"

// ApplyDefaults selects SQLite when no driver is set, and its default file
// when no DSN is set. A PostgreSQL DSN has no sensible default, so it is left
// empty for Validate to report.
func (c *Config) ApplyDefaults() {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	if c.DSN == "" && c.Driver == DriverSQLite {
		c.DSN = DefaultSQLitePath
	}
}

// Validate reports the first invalid field. The error implements
// ConfigPath() string, which names the field ("store.driver" or
// "store.dsn"). An empty driver means SQLite. Messages never repeat the DSN:
// a PostgreSQL URL usually carries a password.
func (c Config) Validate() error {
	switch c.Driver {
	case "", DriverSQLite:
		if c.DSN == "" {
			return configErr("store.dsn", "must not be empty (the SQLite database file path)")
		}
		if err := checkSQLitePath(c.DSN); err != nil {
			return &configError{path: "store.dsn", err: err}
		}
		if isPostgresURL(c.DSN) {
			return configErr("store.dsn", "is a PostgreSQL URL but store.driver is sqlite; set driver: postgres")
		}
	case DriverPostgres:
		if c.DSN == "" {
			return configErr("store.dsn", "must not be empty (a postgres:// URL or key=value connection string)")
		}
	default:
		return configErr("store.driver", fmt.Sprintf("unknown driver %q (want %q or %q)", c.Driver, DriverSQLite, DriverPostgres))
	}
	return nil
}

// Open opens the store that cfg selects, after applying defaults to a copy
// of it and validating it. Schema migrations are applied before it returns.
func Open(ctx context.Context, cfg Config) (Store, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	switch cfg.Driver {
	case DriverSQLite:
		s, err := OpenSQLite(ctx, cfg.DSN)
		if err != nil {
			// A nil *SQLite in a Store interface would not compare equal to nil.
			return nil, err
		}
		return s, nil
	case DriverPostgres:
		return nil, errors.New("store: open: the PostgreSQL store is not available in this build yet; use driver: sqlite")
	}
	// Validate has rejected every other driver.
	return nil, fmt.Errorf("store: open: unknown driver %q", cfg.Driver)
}

func isPostgresURL(dsn string) bool {
	l := strings.ToLower(dsn)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// configError is a validation error that names the offending config.yaml
// field.
type configError struct {
	path string
	err  error
}

func configErr(path, msg string) error { return &configError{path: path, err: errors.New(msg)} }

func (e *configError) Error() string { return e.path + ": " + e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// ConfigPath returns the dotted path of the offending field.
func (e *configError) ConfigPath() string { return e.path }
