package store_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"frontdoor/internal/yamlconf"
	"frontdoor/login/store"
)

func TestConfigApplyDefaults(t *testing.T) {
	// pool is what ApplyDefaults adds to every config without pool settings.
	pool := func(c store.Config) store.Config {
		c.MaxConns, c.ConnectTimeout, c.StatementTimeout = 10, 5*time.Second, 5*time.Second
		return c
	}
	tests := []struct {
		in, want store.Config
	}{
		{store.Config{}, pool(store.Config{Driver: "sqlite", DSN: "data/frontdoor.db"})},
		{store.Config{Driver: "sqlite"}, pool(store.Config{Driver: "sqlite", DSN: "data/frontdoor.db"})},
		{store.Config{DSN: "/var/lib/frontdoor/db"}, pool(store.Config{Driver: "sqlite", DSN: "/var/lib/frontdoor/db"})},
		{store.Config{Driver: "postgres"}, pool(store.Config{Driver: "postgres"})},
		{store.Config{Driver: "postgres", DSN: "postgres://h/db"}, pool(store.Config{Driver: "postgres", DSN: "postgres://h/db"})},
		{
			store.Config{Driver: "postgres", DSN: "postgres://h/db", MaxConns: 3, ConnectTimeout: time.Second, StatementTimeout: time.Minute},
			store.Config{Driver: "postgres", DSN: "postgres://h/db", MaxConns: 3, ConnectTimeout: time.Second, StatementTimeout: time.Minute},
		},
	}
	for _, tt := range tests {
		got := tt.in
		got.ApplyDefaults()
		if got != tt.want {
			t.Errorf("%+v.ApplyDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// TestConfigDecode decodes the store section the way the binary loads
// config.yaml: defaults first, then the file, so that an explicit
// statement_timeout: 0 (none) survives.
func TestConfigDecode(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       store.Config
	}{
		{"empty", `{}`, store.Config{Driver: "sqlite", DSN: "data/frontdoor.db", MaxConns: 10,
			ConnectTimeout: 5 * time.Second, StatementTimeout: 5 * time.Second}},
		{"postgres", `
driver: postgres
dsn: postgres://u@db/frontdoor
max_conns: 25
connect_timeout: 2s
statement_timeout: 0
`, store.Config{Driver: "postgres", DSN: "postgres://u@db/frontdoor", MaxConns: 25,
			ConnectTimeout: 2 * time.Second, StatementTimeout: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := yamlconf.Parse("config.yaml", []byte(tt.yaml), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got store.Config
			got.ApplyDefaults()
			if err := doc.Decode(&got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tt.want {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	// pg is a valid PostgreSQL config with its pool settings changed by set.
	pg := func(set func(c *store.Config)) store.Config {
		c := store.Config{Driver: "postgres", DSN: "postgres://u:secret@db:5432/frontdoor"}
		c.ApplyDefaults()
		if set != nil {
			set(&c)
		}
		return c
	}
	tests := []struct {
		name     string
		cfg      store.Config
		wantPath string // "" means valid
	}{
		{"sqlite", store.Config{Driver: "sqlite", DSN: "data/frontdoor.db"}, ""},
		{"default driver", store.Config{DSN: "data/frontdoor.db"}, ""},
		{"sqlite ignores pool settings", store.Config{DSN: "data/frontdoor.db", MaxConns: -1, ConnectTimeout: -1, StatementTimeout: -1}, ""},
		{"postgres url", pg(nil), ""},
		{"postgres keywords", pg(func(c *store.Config) { c.DSN = "host=db user=u password=secret dbname=frontdoor" }), ""},
		{"postgres no statement timeout", pg(func(c *store.Config) { c.StatementTimeout = 0 }), ""},
		{"postgres one millisecond", pg(func(c *store.Config) { c.StatementTimeout = time.Millisecond }), ""},
		{"unknown driver", store.Config{Driver: "mysql", DSN: "x"}, "store.driver"},
		{"driver case", store.Config{Driver: "SQLite", DSN: "x"}, "store.driver"},
		{"sqlite empty dsn", store.Config{Driver: "sqlite"}, "store.dsn"},
		{"sqlite memory", store.Config{Driver: "sqlite", DSN: ":memory:"}, "store.dsn"},
		{"sqlite uri", store.Config{Driver: "sqlite", DSN: "file:x.db?cache=shared"}, "store.dsn"},
		{"sqlite with postgres url", store.Config{Driver: "sqlite", DSN: "postgres://u:secret@db/frontdoor"}, "store.dsn"},
		{"postgres empty dsn", pg(func(c *store.Config) { c.DSN = "" }), "store.dsn"},
		// A postgres driver left with the SQLite default file as its DSN.
		{"postgres with a file path", pg(func(c *store.Config) { c.DSN = "data/frontdoor.db" }), "store.dsn"},
		{"postgres malformed url", pg(func(c *store.Config) { c.DSN = "postgres://u:secret@db:port/frontdoor" }), "store.dsn"},
		{"max conns zero", pg(func(c *store.Config) { c.MaxConns = 0 }), "store.max_conns"},
		{"max conns negative", pg(func(c *store.Config) { c.MaxConns = -1 }), "store.max_conns"},
		{"max conns too many", pg(func(c *store.Config) { c.MaxConns = math.MaxInt32 + 1 }), "store.max_conns"},
		{"connect timeout zero", pg(func(c *store.Config) { c.ConnectTimeout = 0 }), "store.connect_timeout"},
		{"connect timeout negative", pg(func(c *store.Config) { c.ConnectTimeout = -time.Second }), "store.connect_timeout"},
		{"statement timeout negative", pg(func(c *store.Config) { c.StatementTimeout = -time.Second }), "store.statement_timeout"},
		{"statement timeout below a millisecond", pg(func(c *store.Config) { c.StatementTimeout = 500 * time.Microsecond }), "store.statement_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error for %s", tt.wantPath)
			}
			var pe interface{ ConfigPath() string }
			if !errors.As(err, &pe) {
				t.Fatalf("Validate() = %v, which has no ConfigPath", err)
			}
			if pe.ConfigPath() != tt.wantPath {
				t.Errorf("ConfigPath() = %q, want %q (error: %v)", pe.ConfigPath(), tt.wantPath, err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate() = %q repeats the DSN's password", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := store.Open(t.Context(), store.Config{DSN: filepath.Join(t.TempDir(), "frontdoor.db")})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		if _, ok := s.(*store.SQLite); !ok {
			t.Errorf("Open(sqlite) = %T, want *store.SQLite", s)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
	t.Run("default file", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		s, err := store.Open(t.Context(), store.Config{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(store.DefaultSQLitePath))); err != nil {
			t.Errorf("no database at the default path: %v", err)
		}
	})
	errorCases := []struct {
		name string
		cfg  store.Config
		want string
	}{
		// No server listens on port 1; the pool settings are defaulted.
		{"postgres unreachable", store.Config{Driver: "postgres", DSN: "postgres://u:secret@127.0.0.1:1/db"}, "unavailable"},
		{"postgres invalid dsn", store.Config{Driver: "postgres", DSN: "postgres://u:secret@db:port/x"}, "store.dsn"},
		{"unknown driver", store.Config{Driver: "mysql", DSN: "u:secret@tcp(db)/x"}, "store.driver"},
		{"invalid dsn", store.Config{Driver: "sqlite", DSN: ":memory:"}, "store.dsn"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if s != nil {
				t.Errorf("Open returned a non-nil Store %T with its error", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open error = %q repeats the DSN's password", err)
			}
		})
	}
}
