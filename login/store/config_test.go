package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"frontdoor/login/store"
)

func TestConfigApplyDefaults(t *testing.T) {
	tests := []struct {
		in, want store.Config
	}{
		{store.Config{}, store.Config{Driver: "sqlite", DSN: "data/frontdoor.db"}},
		{store.Config{Driver: "sqlite"}, store.Config{Driver: "sqlite", DSN: "data/frontdoor.db"}},
		{store.Config{DSN: "/var/lib/frontdoor/db"}, store.Config{Driver: "sqlite", DSN: "/var/lib/frontdoor/db"}},
		{store.Config{Driver: "postgres"}, store.Config{Driver: "postgres"}},
		{store.Config{Driver: "postgres", DSN: "postgres://h/db"}, store.Config{Driver: "postgres", DSN: "postgres://h/db"}},
	}
	for _, tt := range tests {
		got := tt.in
		got.ApplyDefaults()
		if got != tt.want {
			t.Errorf("%+v.ApplyDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name     string
		cfg      store.Config
		wantPath string // "" means valid
	}{
		{"sqlite", store.Config{Driver: "sqlite", DSN: "data/frontdoor.db"}, ""},
		{"default driver", store.Config{DSN: "data/frontdoor.db"}, ""},
		{"postgres url", store.Config{Driver: "postgres", DSN: "postgres://u:secret@db:5432/frontdoor"}, ""},
		{"postgres keywords", store.Config{Driver: "postgres", DSN: "host=db user=u password=secret dbname=frontdoor"}, ""},
		{"unknown driver", store.Config{Driver: "mysql", DSN: "x"}, "store.driver"},
		{"driver case", store.Config{Driver: "SQLite", DSN: "x"}, "store.driver"},
		{"sqlite empty dsn", store.Config{Driver: "sqlite"}, "store.dsn"},
		{"sqlite memory", store.Config{Driver: "sqlite", DSN: ":memory:"}, "store.dsn"},
		{"sqlite uri", store.Config{Driver: "sqlite", DSN: "file:x.db?cache=shared"}, "store.dsn"},
		{"sqlite with postgres url", store.Config{Driver: "sqlite", DSN: "postgres://u:secret@db/frontdoor"}, "store.dsn"},
		{"postgres empty dsn", store.Config{Driver: "postgres"}, "store.dsn"},
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
		{"postgres", store.Config{Driver: "postgres", DSN: "postgres://u:secret@127.0.0.1:1/db"}, "PostgreSQL store is not available"},
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
