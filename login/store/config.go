package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Driver names accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DefaultSQLitePath is the database file used when store.dsn is empty.
const DefaultSQLitePath = "data/frontdoor.db"

// Defaults of the PostgreSQL pool settings.
const (
	DefaultMaxConns         = 10
	DefaultConnectTimeout   = 5 * time.Second
	DefaultStatementTimeout = 5 * time.Second
)

// ApplyDefaults selects SQLite when no driver is set, its default file when
// no DSN is set, and the default PostgreSQL pool settings for zero ones. A
// PostgreSQL DSN has no sensible default, so it is left empty for Validate to
// report.
//
// ApplyDefaults cannot tell an explicit `statement_timeout: 0` (none) from
// an absent one, so call it before decoding the section into c. Open and
// OpenPostgres, in contrast, take a zero StatementTimeout as none.
func (c *Config) ApplyDefaults() {
	c.fillRequired()
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
}

// fillRequired applies the defaults of the fields whose zero value is not
// valid, and so cannot have been meant.
func (c *Config) fillRequired() {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	if c.DSN == "" && c.Driver == DriverSQLite {
		c.DSN = DefaultSQLitePath
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate reports the first invalid field. The error implements
// ConfigPath() string, which names the field ("store.driver", "store.dsn",
// "store.max_conns", …). An empty driver means SQLite, which ignores the
// pool settings, so they are checked only for PostgreSQL. Messages never
// repeat the DSN: a PostgreSQL URL usually carries a password.
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
		return c.validatePostgres()
	default:
		return configErr("store.driver", fmt.Sprintf("unknown driver %q (want %q or %q)", c.Driver, DriverSQLite, DriverPostgres))
	}
	return nil
}

// validatePostgres checks the fields that OpenPostgres uses.
func (c Config) validatePostgres() error {
	if c.DSN == "" {
		return configErr("store.dsn", "must not be empty (a postgres:// URL or key=value connection string)")
	}
	if _, err := parsePostgresDSN(c.DSN); err != nil {
		return &configError{path: "store.dsn", err: err}
	}
	switch {
	case c.MaxConns < 1:
		return configErr("store.max_conns", "must be at least 1")
	case c.MaxConns > math.MaxInt32:
		return configErr("store.max_conns", fmt.Sprintf("must be at most %d", math.MaxInt32))
	case c.ConnectTimeout <= 0:
		return configErr("store.connect_timeout", "must be positive")
	case c.StatementTimeout < 0:
		return configErr("store.statement_timeout", "must not be negative (0 means none)")
	case c.StatementTimeout > 0 && c.StatementTimeout < time.Millisecond:
		// PostgreSQL counts in milliseconds, and would read 0 as none.
		return configErr("store.statement_timeout", "must be 0 (none) or at least 1ms")
	}
	return nil
}

// Open opens the store that cfg selects, after filling in the defaults of
// unset fields of a copy of it (a zero StatementTimeout stays none) and
// validating it. Schema migrations are applied before it returns.
func Open(ctx context.Context, cfg Config) (Store, error) {
	cfg.fillRequired()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// A nil *SQLite or *Postgres in a Store interface would not compare
	// equal to nil, hence the separate returns.
	switch cfg.Driver {
	case DriverSQLite:
		s, err := OpenSQLite(ctx, cfg.DSN)
		if err != nil {
			return nil, err
		}
		return s, nil
	case DriverPostgres:
		p, err := OpenPostgres(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return p, nil
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
