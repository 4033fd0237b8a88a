package storetest

import "testing"

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/fd_1?sslmode=disable"},
		{"postgresql://u:p%40ss@db/admin", "postgresql://u:p%40ss@db/fd_1"},
		{"postgres://u@db", "postgres://u@db/fd_1"},
		{"host=db user=u dbname=admin", "host=db user=u dbname=admin dbname=fd_1"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.dsn, "fd_1")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
	if _, err := withDatabase("postgres://u:secret@db:port/x", "fd_1"); err == nil {
		t.Error("withDatabase of a malformed URL succeeded")
	}
}
