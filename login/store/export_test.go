package store

import "database/sql"

// SQLitePools exposes the connection pools of s to the external tests, which
// check the settings of individual pooled connections.
func SQLitePools(s *SQLite) (read, write *sql.DB) { return s.read, s.write }
