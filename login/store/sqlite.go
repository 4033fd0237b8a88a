package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeout is how long a SQLite statement waits for another connection or
// process to release its lock before failing with ErrUnavailable.
const BusyTimeout = 5 * time.Second

// SQLite is the Store kept in one SQLite file in WAL mode. Several processes
// may open the same file at once (serve and the users CLI): every write runs
// in a transaction that takes the database's write lock when it begins, so
// read-then-write sequences cannot interleave.
//
// SQLite lets one connection write at a time. Within a process, writes
// therefore share a single connection and queue for it in database/sql,
// instead of each holding a connection and polling the file lock; reads use
// a separate pool and, in WAL mode, never wait for the writer.
type SQLite struct {
	read   *sql.DB
	write  *sql.DB
	ckpt   *checkpointer
	closed atomic.Bool
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the SQLite database at path, a plain
// file path, and applies the embedded migrations. A new file and its parent
// directories are created readable by the owner only: the file holds
// password hashes and the private signing keys.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if err := checkSQLitePath(path); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w: %w", ErrUnavailable, err)
	}
	// SQLite would create the file with the umask's permissions; creating it
	// first fixes them, and SQLite gives the -wal and -shm files the same.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w: %w", ErrUnavailable, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w: %w", ErrUnavailable, err)
	}
	ms, err := loadMigrations(migrationFiles, "migrations/sqlite")
	if err != nil {
		return nil, err
	}
	// sql.Open only validates its arguments; connections open on first use.
	connector, err := sqlite.NewConnector(sqliteDSN(abs, false))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// Its connections keep writeTx's prepared statements.
	write := sql.OpenDB(writerConnector{connector})
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", sqliteDSN(abs, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	s := &SQLite{read: read, write: write}
	// The writer connects first: it may have to turn a new file into a WAL
	// database, which a query_only reader could not do.
	err = connect(ctx, write)
	if err != nil {
		err = s.wrap("open sqlite", err)
	} else if err = s.migrate(ctx, ms); err == nil {
		if err = connect(ctx, read); err != nil {
			err = s.wrap("open sqlite", err)
		}
	}
	if err == nil {
		err = s.startCheckpointer(ctx, abs)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// startCheckpointer opens the checkpointer's connection and starts it.
func (s *SQLite) startCheckpointer(ctx context.Context, abs string) error {
	db, err := sql.Open("sqlite", sqliteDSN(abs, false))
	if err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := connect(ctx, db); err != nil {
		db.Close()
		return s.wrap("open sqlite", err)
	}
	s.ckpt = startCheckpointer(db, checkpointInterval)
	return nil
}

// connect opens db's first connection. The driver applies the DSN's
// pragmas as it connects, and switching a brand-new file to WAL while
// another process does the same can fail with SQLITE_BUSY without SQLite
// consulting busy_timeout (about 5% of four simultaneous opens of one new
// file did), so a busy connection attempt is repeated for up to
// BusyTimeout, as a busy statement would wait.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(BusyTimeout)
	for {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkSQLitePath rejects what OpenSQLite cannot honour as a file path.
func checkSQLitePath(path string) error {
	switch {
	case path == "":
		return errors.New("empty database path")
	case strings.ContainsRune(path, 0):
		return errors.New("database path contains a NUL byte")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// Each pooled connection would open its own private in-memory
		// database, and a URI would be taken for a literal file name.
		return errors.New("database path must be a plain file path, not :memory: or a file: URI")
	}
	return nil
}

// sqliteDSN builds the driver DSN for the file at abs; readOnly connections
// refuse writes, so that a write sent to the wrong pool fails loudly. The
// settings are DSN parameters rather than statements run after opening
// because database/sql opens connections on demand: only the DSN reaches
// every one of them.
func sqliteDSN(abs string, readOnly bool) string {
	q := url.Values{}
	// busy_timeout is applied first by the driver, so that switching to WAL
	// waits for a process that is converting the same new file.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// BEGIN IMMEDIATE: a transaction that read under a shared lock and then
	// writes could not wait for the write lock (SQLITE_BUSY at once, since
	// waiting could deadlock); taking it up front makes writers queue.
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("_query_only", "1") // the driver applies it after the pragmas above
	} else {
		// Checkpoints run on a connection of their own (sqlite_checkpoint.go);
		// the writer's own is the backstop that writerAutoCheckpoint describes.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	// In a file: URI, '?' and '#' end the path and '%' starts an escape.
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	return "file:" + p + "?" + q.Encode()
}

// migrate applies the migrations that the database lacks, each in its own
// write transaction, so that processes opening a new file at the same time
// take turns and the later ones find the work done.
func (s *SQLite) migrate(ctx context.Context, ms []migration) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`)
		if err != nil {
			return err
		}
		var newest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
			return err
		}
		if known := ms[len(ms)-1].version; newest.Valid && newest.Int64 > known {
			return fmt.Errorf("database schema version %d is newer than this build's %d; upgrade frontdoor", newest.Int64, known)
		}
		return nil
	})
	if err != nil {
		return s.wrap("migrate", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var done bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return s.wrap("migrate "+m.name, err)
		}
	}
	return nil
}

// Ping checks that the database file can be read.
func (s *SQLite) Ping(ctx context.Context) error {
	// SELECT 1 would not touch the file; reading a table does.
	var n int64
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// Close closes the database; later calls fail with ErrUnavailable.
func (s *SQLite) Close() error {
	s.closed.Store(true)
	var ckptErr error
	if s.ckpt != nil {
		ckptErr = s.ckpt.Close()
	}
	if err := errors.Join(ckptErr, s.write.Close(), s.read.Close()); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// SigningKeys returns every stored key, newest ActivatedAt first.
func (s *SQLite) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT kid, private_pem, created_at, activated_at, retired_at
		FROM signing_keys ORDER BY activated_at DESC, created_at DESC, kid`)
	if err != nil {
		return nil, s.wrap("signing keys", err)
	}
	defer rows.Close()
	keys := []SigningKey{}
	for rows.Next() {
		var k SigningKey
		var created, activated int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.ID, &k.PrivatePEM, &created, &activated, &retired); err != nil {
			return nil, s.wrap("signing keys", err)
		}
		k.CreatedAt = fromMicros(created)
		k.ActivatedAt = fromMicros(activated)
		k.RetiredAt = fromNullMicros(retired)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("signing keys", err)
	}
	return keys, nil
}

// ActivateSigningKey retires the active key at k.ActivatedAt and inserts k as
// the active key, in one transaction; ErrConflict (and no change) if k.ID
// exists. k.RetiredAt is ignored.
func (s *SQLite) ActivateSigningKey(ctx context.Context, k SigningKey) error {
	if err := checkSigningKey(k); err != nil {
		return fmt.Errorf("store: activate signing key: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`,
			k.ActivatedAt.UnixMicro()); err != nil {
			return err
		}
		return insertSigningKey(ctx, tx, k)
	})
	if err != nil {
		return s.wrap("activate signing key", err)
	}
	return nil
}

// EnsureSigningKey inserts the key made by generate if no key is active. It
// calls generate only after seeing no active key, and outside the write
// transaction (RSA key generation takes long enough to stall every other
// writer); the transaction then checks again, so of several processes racing
// on a new database exactly one inserts and the others' keys are dropped.
func (s *SQLite) EnsureSigningKey(ctx context.Context, generate func() (SigningKey, error)) (bool, error) {
	active, err := hasActiveKey(ctx, s.read)
	if err != nil {
		return false, s.wrap("ensure signing key", err)
	}
	if active {
		return false, nil
	}
	k, err := generate()
	if err != nil {
		return false, fmt.Errorf("store: ensure signing key: generate: %w", err)
	}
	if err := checkSigningKey(k); err != nil {
		return false, fmt.Errorf("store: ensure signing key: %w", err)
	}
	inserted := false
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		active, err := hasActiveKey(ctx, tx)
		if err != nil || active {
			return err
		}
		if err := insertSigningKey(ctx, tx, k); err != nil {
			return err
		}
		inserted = true
		return nil
	})
	if err != nil {
		return false, s.wrap("ensure signing key", err)
	}
	return inserted, nil
}

// DeleteSigningKeysRetiredBefore removes retired keys with RetiredAt < t.
func (s *SQLite) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?`, t.UnixMicro())
	if err != nil {
		return 0, s.wrap("delete retired signing keys", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("delete retired signing keys", err)
	}
	return int(n), nil
}

func checkSigningKey(k SigningKey) error {
	switch {
	case k.ID == "":
		return errors.New("key has no id")
	case len(k.PrivatePEM) == 0:
		return errors.New("key has no private key")
	case k.ActivatedAt.IsZero():
		// It becomes the previous key's RetiredAt; zero would leave that
		// key active.
		return errors.New("key has no activation time")
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func hasActiveKey(ctx context.Context, q querier) (bool, error) {
	var active bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)`).Scan(&active)
	return active, err
}

func insertSigningKey(ctx context.Context, q querier, k SigningKey) error {
	_, err := q.ExecContext(ctx, `INSERT INTO signing_keys (kid, private_pem, created_at, activated_at, retired_at)
		VALUES (?, ?, ?, ?, NULL)`, k.ID, k.PrivatePEM, k.CreatedAt.UnixMicro(), k.ActivatedAt.UnixMicro())
	return err
}

const userColumns = `id, appid, openid, unionid, username, password_hash, nickname, avatar_url,
	gender, roles, disabled, session_key, created_at, updated_at, last_login_at, token_version, token_version_at`

// bumpTokenVersion is the SET clause that cuts off the user's access tokens;
// its placeholder is the time of the change.
const bumpTokenVersion = `token_version = token_version + 1, token_version_at = ?`

// The statements of a WeChat login.
const (
	selectWeChatUserSQL = `SELECT id FROM users WHERE appid = ? AND openid = ?`
	insertWeChatUserSQL = `INSERT INTO users
		(appid, openid, unionid, nickname, avatar_url, gender, roles, session_key, created_at, updated_at, last_login_at)
		VALUES (?, ?, ?, COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, 0), ?, ?, ?, ?, ?)
		RETURNING ` + userColumns
	updateWeChatUserSQL = `UPDATE users SET
			session_key = ?,
			unionid = COALESCE(?, unionid),
			nickname = COALESCE(?, nickname),
			avatar_url = COALESCE(?, avatar_url),
			gender = COALESCE(?, gender),
			last_login_at = ?,
			updated_at = ?
		WHERE id = ?
		RETURNING ` + userColumns
)

// UpsertWeChatUser finds the user by (AppID, OpenID) or creates it. The
// lookup and the write share one write transaction, which other connections
// and processes wait for, so concurrent first logins create one user.
func (s *SQLite) UpsertWeChatUser(ctx context.Context, in WeChatLogin) (User, bool, error) {
	const op = "upsert wechat user"
	if err := checkWeChatLogin(in); err != nil {
		return User{}, false, fmt.Errorf("store: %s: %w", op, err)
	}
	var (
		u       User
		created bool
	)
	err := s.writeTx(ctx, func(q writeQuerier) error {
		var err error
		u, created, err = upsertWeChatUserTx(q, in)
		return err
	})
	if err != nil {
		return User{}, false, s.wrap(op, err)
	}
	return u, created, nil
}

// StartWeChatSession is UpsertWeChatUser and, unless the user is disabled,
// CreateRefreshToken in the same write transaction: a login costs one WAL
// commit instead of two, and a token that cannot be stored leaves no user
// behind.
func (s *SQLite) StartWeChatSession(ctx context.Context, in WeChatLogin, first RefreshToken) (User, bool, error) {
	const op = "start wechat session"
	if err := checkWeChatSession(in, first); err != nil {
		return User{}, false, fmt.Errorf("store: %s: %w", op, err)
	}
	var (
		u       User
		created bool
	)
	err := s.writeTx(ctx, func(q writeQuerier) error {
		var err error
		u, created, err = upsertWeChatUserTx(q, in)
		if err != nil || u.Disabled {
			return err
		}
		first.UserID = u.ID
		return insertRefreshToken(q, first)
	})
	if err != nil {
		return User{}, false, s.wrap(op, err)
	}
	return u, created, nil
}

// upsertWeChatUserTx is UpsertWeChatUser within the write transaction of
// q, for a checked in.
func upsertWeChatUserTx(q writeQuerier, in WeChatLogin) (User, bool, error) {
	var p Profile
	if in.Profile != nil {
		p = *in.Profile
	}
	now := in.Now.UnixMicro()
	var id int64
	err := q.queryRow(selectWeChatUserSQL, in.AppID, in.OpenID).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		roles, err := encodeRoles(in.DefaultRoles)
		if err != nil {
			return User{}, false, err
		}
		u, err := scanUser(q.queryRow(insertWeChatUserSQL,
			in.AppID, in.OpenID, nullString(in.UnionID), optString(p.Nickname), optString(p.AvatarURL), optInt(p.Gender),
			roles, nullBytes(in.SessionKey), now, now, now))
		return u, true, err
	case err != nil:
		return User{}, false, err
	}
	u, err := scanUser(q.queryRow(updateWeChatUserSQL,
		nullBytes(in.SessionKey), nullString(in.UnionID), optString(p.Nickname), optString(p.AvatarURL), optInt(p.Gender),
		now, now, id))
	return u, false, err
}

// CreatePasswordUser inserts a username/password user; ErrConflict if the
// username is taken.
func (s *SQLite) CreatePasswordUser(ctx context.Context, in NewPasswordUser) (User, error) {
	if in.Username == "" {
		return User{}, errors.New("store: create password user: username is required")
	}
	roles, err := encodeRoles(in.Roles)
	if err != nil {
		return User{}, fmt.Errorf("store: create password user: %w", err)
	}
	now := in.Now.UnixMicro()
	var u User
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `INSERT INTO users
			(username, password_hash, roles, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?)
			RETURNING `+userColumns,
			in.Username, nullString(in.PasswordHash), roles, now, now))
		return err
	})
	if err != nil {
		return User{}, s.wrap("create password user", err)
	}
	return u, nil
}

// UserByID returns the user with id, or ErrNotFound.
func (s *SQLite) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return User{}, s.wrap("user by id", err)
	}
	return u, nil
}

// UserByUsername returns the user whose username is exactly username, or
// ErrNotFound.
func (s *SQLite) UserByUsername(ctx context.Context, username string) (User, error) {
	// "=" compares TEXT with the BINARY collation: case-sensitive, byte for
	// byte. An empty name matches nothing because absent usernames are NULL.
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return User{}, s.wrap("user by username", err)
	}
	return u, nil
}

// Users lists all users ordered by id.
func (s *SQLite) Users(ctx context.Context) ([]User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, s.wrap("users", err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap("users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("users", err)
	}
	return users, nil
}

// UpdateProfile changes the non-nil fields of p.
func (s *SQLite) UpdateProfile(ctx context.Context, id int64, p Profile, now time.Time) (User, error) {
	return s.updateUser(ctx, "update profile", `nickname = COALESCE(?, nickname),
		avatar_url = COALESCE(?, avatar_url), gender = COALESCE(?, gender)`,
		now, id, optString(p.Nickname), optString(p.AvatarURL), optInt(p.Gender))
}

// SetRoles replaces the user's roles; nil means none. It reads the stored
// roles in the same write transaction as it replaces them, so a concurrent
// change cannot make it miss (or invent) a change of the role set.
func (s *SQLite) SetRoles(ctx context.Context, id int64, roles []string, now time.Time) (User, error) {
	r, err := encodeRoles(roles)
	if err != nil {
		return User{}, fmt.Errorf("store: set roles: %w", err)
	}
	var u User
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var stored string
		if err := tx.QueryRowContext(ctx, `SELECT roles FROM users WHERE id = ?`, id).Scan(&stored); err != nil {
			return err
		}
		old, err := decodeRoles(stored)
		if err != nil {
			return err
		}
		set, args := `roles = ?`, []any{r}
		if !sameRoleSet(old, roles) {
			set += `, ` + bumpTokenVersion
			args = append(args, now.UnixMicro())
		}
		u, err = updateUserTx(ctx, tx, set, now, id, args...)
		return err
	})
	if err != nil {
		return User{}, s.wrap("set roles", err)
	}
	return u, nil
}

// sameRoleSet reports whether a and b name the same roles, in any order and
// with any repetitions.
func sameRoleSet(a, b []string) bool {
	in := func(set []string) map[string]bool {
		m := make(map[string]bool, len(set))
		for _, r := range set {
			m[r] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	if len(ma) != len(mb) {
		return false
	}
	for r := range ma {
		if !mb[r] {
			return false
		}
	}
	return true
}

// SetDisabled disables or enables the user; disabling cuts off the user's
// access tokens.
func (s *SQLite) SetDisabled(ctx context.Context, id int64, disabled bool, now time.Time) (User, error) {
	if disabled {
		return s.updateUser(ctx, "set disabled", `disabled = 1, `+bumpTokenVersion, now, id, now.UnixMicro())
	}
	return s.updateUser(ctx, "set disabled", `disabled = 0`, now, id)
}

// SetPasswordHash replaces the user's password hash.
func (s *SQLite) SetPasswordHash(ctx context.Context, id int64, hash string, now time.Time) (User, error) {
	return s.updateUser(ctx, "set password hash", `password_hash = ?`, now, id, nullString(hash))
}

// updateUser runs UPDATE users SET <set>, updated_at = now WHERE id = id and
// returns the updated row; args are the placeholders of set.
func (s *SQLite) updateUser(ctx context.Context, op, set string, now time.Time, id int64, args ...any) (User, error) {
	var u User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = updateUserTx(ctx, tx, set, now, id, args...)
		return err
	})
	if err != nil {
		return User{}, s.wrap(op, err)
	}
	return u, nil
}

// updateUserTx is updateUser within the transaction tx.
func updateUserTx(ctx context.Context, tx *sql.Tx, set string, now time.Time, id int64, args ...any) (User, error) {
	args = append(args, now.UnixMicro(), id)
	return scanUser(tx.QueryRowContext(ctx, `UPDATE users SET `+set+`, updated_at = ? WHERE id = ? RETURNING `+userColumns, args...))
}

// RecordLogin sets the user's LastLoginAt. It leaves UpdatedAt alone: a login
// changes nothing about the account itself.
func (s *SQLite) RecordLogin(ctx context.Context, id int64, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE users SET last_login_at = ? WHERE id = ?`, now.UnixMicro(), id)
	if err != nil {
		return s.wrap("record login", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap("record login", err)
	}
	if n == 0 {
		return fmt.Errorf("store: record login: %w", ErrNotFound)
	}
	return nil
}

// inTx runs fn in a transaction on the writer connection, which
// _txlock=immediate makes a write transaction from its first statement.
func (s *SQLite) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error of fn is the one worth reporting
		return err
	}
	return tx.Commit()
}

// wrap adds op to err and classifies it: sql.ErrNoRows becomes ErrNotFound,
// a unique or primary-key violation ErrConflict, a foreign-key violation
// (a row naming a user that does not exist) ErrNotFound, and failures to
// use the database file at all ErrUnavailable. SQLite's messages name columns, never
// values, so they can be kept.
func (s *SQLite) wrap(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("store: %s: %w: %w", op, ErrConflict, err)
		case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("store: %s: %w: %w", op, ErrNotFound, err)
		case unavailableCode(code):
			return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
		}
	}
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// unavailableCode reports whether a SQLite result code means the database
// could not be used at all (locked for longer than BusyTimeout, unreadable,
// full), as opposed to a problem with the statement.
func unavailableCode(code int) bool {
	switch code & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_PERM:
		return true
	}
	return false
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanUser reads the userColumns of one row.
func scanUser(r rowScanner) (User, error) {
	var (
		u                                         User
		appid, openid, unionid, username, pwdHash sql.NullString
		roles                                     string
		created, updated                          int64
		lastLogin, versionAt                      sql.NullInt64
	)
	err := r.Scan(&u.ID, &appid, &openid, &unionid, &username, &pwdHash, &u.Nickname, &u.AvatarURL,
		&u.Gender, &roles, &u.Disabled, &u.SessionKey, &created, &updated, &lastLogin, &u.TokenVersion, &versionAt)
	if err != nil {
		return User{}, err
	}
	u.AppID, u.OpenID, u.UnionID = appid.String, openid.String, unionid.String
	u.Username, u.PasswordHash = username.String, pwdHash.String
	if u.Roles, err = decodeRoles(roles); err != nil {
		return User{}, err
	}
	u.CreatedAt = fromMicros(created)
	u.UpdatedAt = fromMicros(updated)
	u.LastLoginAt = fromNullMicros(lastLogin)
	u.TokenVersionAt = fromNullMicros(versionAt)
	return u, nil
}

// encodeRoles renders roles as a JSON array; nil is the empty array.
func encodeRoles(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	b, err := json.Marshal(roles)
	if err != nil {
		return "", fmt.Errorf("encode roles: %w", err)
	}
	return string(b), nil
}

// decodeRoles parses a JSON array of role names; the result is never nil.
func decodeRoles(s string) ([]string, error) {
	var roles []string
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, fmt.Errorf("decode roles: %w", err)
	}
	if roles == nil {
		roles = []string{}
	}
	return roles, nil
}

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// nullString stores "" as NULL, which the unique indexes skip.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// optString and optInt turn an unset Profile field into NULL, which
// COALESCE(?, column) reads as "keep the column".
func optString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func optInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
