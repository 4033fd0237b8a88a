package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE … COMMIT) on the
// writer connection, through the driver directly instead of through
// database/sql. It carries the writes of every login and token refresh.
//
// Outside SQLite itself, most of a login's store CPU was database/sql's and
// the driver's context handling: a goroutine per transaction and one per
// statement watching the request's context, a statement handle per
// transaction, and argument conversion. writeTx skips all of it: its
// statements are prepared once per connection (writerConn) and are not
// interrupted by ctx. Only the wait for the writer connection follows ctx;
// once a transaction has it, its few indexed statements run to the end,
// bounded by busy_timeout like any statement.
//
// fn must not keep q. The transaction commits when fn returns nil and rolls
// back otherwise; a connection that fails to roll back is discarded.
func (s *SQLite) writeTx(ctx context.Context, fn func(q writeQuerier) error) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		wc, ok := dc.(*writerConn)
		if !ok {
			return fmt.Errorf("writer connection is a %T, not a *writerConn", dc)
		}
		q := writeQuerier{c: wc}
		if err := q.exec("BEGIN IMMEDIATE"); err != nil {
			return err
		}
		err := fn(q)
		if err == nil {
			if err = q.exec("COMMIT"); err == nil {
				return nil
			}
		}
		if rerr := q.exec("ROLLBACK"); rerr != nil {
			// database/sql discards a connection on ErrBadConn; a
			// transaction left open must not reach the next caller.
			return errors.Join(err, fmt.Errorf("roll back: %w", rerr), driver.ErrBadConn)
		}
		return err
	})
}

// writeQuerier runs statements inside writeTx.
type writeQuerier struct {
	c *writerConn
}

// exec runs a statement that returns no rows.
func (q writeQuerier) exec(query string, args ...any) error {
	st, nv, err := q.c.bind(query, args)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(context.Background(), nv)
	return err
}

// queryRow runs query and returns its first row; its Scan reports
// sql.ErrNoRows when there is none, as database/sql's Row does.
func (q writeQuerier) queryRow(query string, args ...any) rowScanner {
	st, nv, err := q.c.bind(query, args)
	if err != nil {
		return driverRow{err: err}
	}
	rows, err := st.QueryContext(context.Background(), nv)
	if err != nil {
		return driverRow{err: err}
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	switch err := rows.Next(vals); {
	case errors.Is(err, io.EOF):
		return driverRow{err: sql.ErrNoRows}
	case err != nil:
		return driverRow{err: err}
	}
	return driverRow{vals: vals}
}

// preparedStmt is what writeQuerier needs of a driver statement.
type preparedStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// writerConnector opens writerConns.
type writerConnector struct {
	driver.Connector
}

func (c writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	wc, err := newWriterConn(dc)
	if err != nil {
		dc.Close()
		return nil, err
	}
	return wc, nil
}

// writerConn is the SQLite driver's connection plus the statements that
// writeTx prepared on it, which it finalises before the connection closes
// (a statement left unfinalised would keep the closed connection's files
// open). The statements are the store's SQL constants, so the cache stays
// small. database/sql hands a connection to one user at a time, so the
// cache needs no lock.
//
// It forwards every optional interface of database/sql/driver that the
// SQLite driver implements, so database/sql treats it as it would the
// driver's own connection.
type writerConn struct {
	driver.Conn
	beginTx   driver.ConnBeginTx
	prepare   driver.ConnPrepareContext
	execer    driver.ExecerContext
	queryer   driver.QueryerContext
	pinger    driver.Pinger
	resetter  driver.SessionResetter
	validator driver.Validator
	stmts     map[string]preparedStmt
}

func newWriterConn(dc driver.Conn) (*writerConn, error) {
	c := &writerConn{Conn: dc, stmts: map[string]preparedStmt{}}
	var ok [7]bool
	c.beginTx, ok[0] = dc.(driver.ConnBeginTx)
	c.prepare, ok[1] = dc.(driver.ConnPrepareContext)
	c.execer, ok[2] = dc.(driver.ExecerContext)
	c.queryer, ok[3] = dc.(driver.QueryerContext)
	c.pinger, ok[4] = dc.(driver.Pinger)
	c.resetter, ok[5] = dc.(driver.SessionResetter)
	c.validator, ok[6] = dc.(driver.Validator)
	for _, ok := range ok {
		if !ok {
			return nil, fmt.Errorf("sqlite driver connection %T lacks an interface the writer forwards", dc)
		}
	}
	return c, nil
}

// bind returns query's statement, preparing it on first use, and args as
// the driver's values.
func (c *writerConn) bind(query string, args []any) (preparedStmt, []driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driverValue(a)
		if err != nil {
			return nil, nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	if st := c.stmts[query]; st != nil {
		return st, nv, nil
	}
	ds, err := c.prepare.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, nil, err
	}
	st, ok := ds.(preparedStmt)
	if !ok {
		ds.Close()
		return nil, nil, fmt.Errorf("sqlite driver statement %T lacks ExecContext or QueryContext", ds)
	}
	c.stmts[query] = st
	return st, nv, nil
}

// driverValue converts the argument types the store passes.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, int64, string, []byte, bool, float64:
		return v, nil
	case int:
		return int64(v), nil
	default:
		return nil, fmt.Errorf("unsupported type %T", a)
	}
}

func (c *writerConn) Close() error {
	for q, st := range c.stmts {
		_ = st.Close() // the connection's Close reports what matters
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}

func (c *writerConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.beginTx.BeginTx(ctx, opts)
}

func (c *writerConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, query)
}

func (c *writerConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.execer.ExecContext(ctx, query, args)
}

func (c *writerConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.queryer.QueryContext(ctx, query, args)
}

func (c *writerConn) Ping(ctx context.Context) error { return c.pinger.Ping(ctx) }

func (c *writerConn) ResetSession(ctx context.Context) error { return c.resetter.ResetSession(ctx) }

func (c *writerConn) IsValid() bool { return c.validator.IsValid() }

// driverRow is one row read through the driver. Its Scan fills the few
// destination types the store's scanners use, converting as database/sql's
// Row.Scan would for SQLite's values.
type driverRow struct {
	vals []driver.Value
	err  error
}

func (r driverRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if len(dest) != len(r.vals) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.vals))
	}
	for i, d := range dest {
		if err := scanDriverValue(d, r.vals[i]); err != nil {
			return fmt.Errorf("scan column %d: %w", i, err)
		}
	}
	return nil
}

func scanDriverValue(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *sql.NullString:
		*d = sql.NullString{}
		if v == nil {
			return nil
		}
		d.Valid = true
		return scanDriverValue(&d.String, v)
	case *sql.NullInt64:
		*d = sql.NullInt64{}
		if v == nil {
			return nil
		}
		d.Valid = true
		return scanDriverValue(&d.Int64, v)
	case *[]byte:
		switch b := v.(type) {
		case nil:
			*d = nil
		case []byte:
			*d = append([]byte(nil), b...) // the driver may reuse its buffer
		case string:
			*d = []byte(b)
		default:
			return fmt.Errorf("cannot scan %T into []byte", v)
		}
		return nil
	}
	switch x := v.(type) {
	case int64:
		switch d := dest.(type) {
		case *int64:
			*d = x
		case *int:
			*d = int(x)
		case *bool:
			*d = x != 0
		default:
			return fmt.Errorf("cannot scan an integer into %T", dest)
		}
	case string:
		d, ok := dest.(*string)
		if !ok {
			return fmt.Errorf("cannot scan text into %T", dest)
		}
		*d = x
	case []byte:
		d, ok := dest.(*string)
		if !ok {
			return fmt.Errorf("cannot scan a blob into %T", dest)
		}
		*d = string(x)
	default:
		return fmt.Errorf("cannot scan %T into %T", v, dest)
	}
	return nil
}
