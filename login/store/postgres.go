package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock keys of the store's own critical sections. They use the
// two-int4 key space, which PostgreSQL keeps apart from the single-bigint
// one that TryLock uses, so no lock name can collide with them.
const (
	pgLockClass      = 0x66726f6e // "fron"
	pgLockMigrate    = 1
	pgLockSigningKey = 2
)

// maxRevokePasses bounds the loop of revokeFamilyTx and
// RevokeUserRefreshTokens; see revokeFamilyTx.
const maxRevokePasses = 100

// Postgres is the Store kept in a PostgreSQL database, which several
// replicas share. Every operation is one statement, or a transaction whose
// interleavings with others are made safe by row locks (READ COMMITTED) or,
// where a row lock cannot serialize them, an advisory lock.
//
// Statements name their columns and are prepared once per pooled
// connection. Because a migration only ever adds to the schema, replicas of
// an older build keep working against a database that a newer one has
// migrated. Both the prepared statements and TryLock's advisory lock belong
// to a database session, so the DSN must reach PostgreSQL directly or
// through a proxy that keeps sessions (PgBouncer in session mode, not
// transaction mode).
type Postgres struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the database that cfg.DSN names, with the pool
// settings of cfg (zero MaxConns and ConnectTimeout mean their defaults; a
// zero StatementTimeout means none), and applies the embedded migrations.
// cfg.Driver is not looked at.
//
// The migrations run in one transaction that holds an advisory lock, so
// that of several replicas starting at once one applies each migration and
// the others wait and find it done. A database migrated by a newer build,
// which has versions this one does not know, is accepted rather than
// refused: during a rolling upgrade the new replicas migrate first while the
// old ones still run, which is safe because migrations are additive.
//
// A database that cannot be reached is ErrUnavailable. Errors never repeat
// the DSN.
func OpenPostgres(ctx context.Context, cfg Config) (*Postgres, error) {
	cfg.Driver = DriverPostgres
	cfg.fillRequired()
	if err := cfg.validatePostgres(); err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	pc, err := parsePostgresDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	pc.MaxConns = int32(cfg.MaxConns) // validated to fit
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	// A startup parameter rather than a SET after connecting: it then holds
	// on every connection the pool ever opens, from its first statement.
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "frontdoor"
	}
	ms, err := loadMigrations(migrationFiles, "migrations/postgres")
	if err != nil {
		return nil, err
	}
	// NewWithConfig connects lazily; the migration below is the first use.
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	p := &Postgres{pool: pool}
	if err := p.migrate(ctx, ms); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// parsePostgresDSN parses dsn without ever putting it in an error: pgx's
// parse errors quote the connection string, password and all, on a best
// effort basis only.
func parsePostgresDSN(dsn string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("is not a PostgreSQL connection string (want a postgres:// URL or key=value pairs)")
	}
	return pc, nil
}

// migrate applies the migrations that the database lacks, all in one
// transaction under an advisory lock. Versions unknown to this build are
// left alone (see OpenPostgres).
func (p *Postgres) migrate(ctx context.Context, ms []migration) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// Waiting for another replica's migration, or running a long one,
		// must not hit the statement timeout meant for logins; ctx bounds it.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(pgLockClass), int32(pgLockMigrate)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    bigint      PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		done := make(map[int64]bool, len(applied))
		for _, v := range applied {
			done[v] = true
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			// Without arguments pgx sends the simple protocol, which runs a
			// file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
				m.version, time.Now()); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return p.wrap("open postgres: migrate", err)
	}
	return nil
}

// Ping checks that the database answers.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return p.wrap("ping", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned;
// later calls fail with ErrUnavailable. Closing twice is harmless.
func (p *Postgres) Close() error {
	p.closed.Store(true)
	p.pool.Close()
	return nil
}

// SigningKeys returns every stored key, newest ActivatedAt first.
func (p *Postgres) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	// COLLATE "C" orders ties byte by byte, as SQLite does.
	rows, err := p.pool.Query(ctx, `SELECT kid, private_pem, created_at, activated_at, retired_at
		FROM signing_keys ORDER BY activated_at DESC, created_at DESC, kid COLLATE "C"`)
	if err != nil {
		return nil, p.wrap("signing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SigningKey, error) {
		var (
			k       SigningKey
			retired *time.Time
		)
		if err := r.Scan(&k.ID, &k.PrivatePEM, &k.CreatedAt, &k.ActivatedAt, &retired); err != nil {
			return SigningKey{}, err
		}
		k.CreatedAt, k.ActivatedAt, k.RetiredAt = k.CreatedAt.UTC(), k.ActivatedAt.UTC(), fromPGNullTime(retired)
		return k, nil
	})
	if err != nil {
		return nil, p.wrap("signing keys", err)
	}
	if keys == nil {
		keys = []SigningKey{}
	}
	return keys, nil
}

// ActivateSigningKey retires the active key at k.ActivatedAt and inserts k as
// the active key, in one transaction; ErrConflict (and no change) if k.ID
// exists. k.RetiredAt is ignored.
//
// Concurrent rotations take turns on an advisory lock: without it, a
// rotation that waited for another's retirement of the same key would find
// no key left to retire, and its insert would then break the one-active-key
// index.
func (p *Postgres) ActivateSigningKey(ctx context.Context, k SigningKey) error {
	if err := checkSigningKey(k); err != nil {
		return fmt.Errorf("store: activate signing key: %w", err)
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(pgLockClass), int32(pgLockSigningKey)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL`, k.ActivatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, private_pem, created_at, activated_at, retired_at)
			VALUES ($1, $2, $3, $4, NULL)`, k.ID, k.PrivatePEM, k.CreatedAt, k.ActivatedAt)
		return err
	})
	if err != nil {
		return p.wrap("activate signing key", err)
	}
	return nil
}

// EnsureSigningKey inserts the key made by generate if no key is active. It
// calls generate only after seeing no active key; the insert then gives way
// to any active key through the one-active-key index, so of several
// processes racing on a new database exactly one inserts.
func (p *Postgres) EnsureSigningKey(ctx context.Context, generate func() (SigningKey, error)) (bool, error) {
	var active bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)`).Scan(&active); err != nil {
		return false, p.wrap("ensure signing key", err)
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
	// The conflict target is the one-active-key index only: a duplicate kid
	// is still ErrConflict, as in SQLite.
	tag, err := p.pool.Exec(ctx, `INSERT INTO signing_keys (kid, private_pem, created_at, activated_at, retired_at)
		VALUES ($1, $2, $3, $4, NULL)
		ON CONFLICT ((retired_at IS NULL)) WHERE retired_at IS NULL DO NOTHING`,
		k.ID, k.PrivatePEM, k.CreatedAt, k.ActivatedAt)
	if err != nil {
		return false, p.wrap("ensure signing key", err)
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteSigningKeysRetiredBefore removes retired keys with RetiredAt < t.
func (p *Postgres) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1`, t)
	if err != nil {
		return 0, p.wrap("delete retired signing keys", err)
	}
	return int(tag.RowsAffected()), nil
}

// The statements of a WeChat login. The first login of an openid inserts,
// every later one updates; updating first makes the common case one
// statement.
const (
	pgUpdateWeChatUserSQL = `UPDATE users SET
			session_key = $3,
			unionid = COALESCE($4, unionid),
			nickname = COALESCE($5, nickname),
			avatar_url = COALESCE($6, avatar_url),
			gender = COALESCE($7, gender),
			last_login_at = $8,
			updated_at = $8
		WHERE appid = $1 AND openid = $2
		RETURNING ` + userColumns
	pgInsertWeChatUserSQL = `INSERT INTO users
			(appid, openid, session_key, unionid, nickname, avatar_url, gender, created_at, updated_at, last_login_at, roles)
		VALUES ($1, $2, $3, $4, COALESCE($5, ''), COALESCE($6, ''), COALESCE($7, 0), $8, $8, $8, $9)
		ON CONFLICT (appid, openid) WHERE openid IS NOT NULL DO NOTHING
		RETURNING ` + userColumns
)

// UpsertWeChatUser finds the user by (AppID, OpenID) or creates it; see
// upsertPGWeChatUser. Its statements run on their own, outside any
// transaction.
func (p *Postgres) UpsertWeChatUser(ctx context.Context, in WeChatLogin) (User, bool, error) {
	const op = "upsert wechat user"
	if err := checkWeChatLogin(in); err != nil {
		return User{}, false, fmt.Errorf("store: %s: %w", op, err)
	}
	u, created, err := upsertPGWeChatUser(ctx, p.pool, in)
	if err != nil {
		return User{}, false, p.wrap(op, err)
	}
	return u, created, nil
}

// StartWeChatSession is UpsertWeChatUser and, unless the user is disabled,
// CreateRefreshToken in one transaction, so that a token that cannot be
// stored leaves no user behind. Under READ COMMITTED every statement of
// upsertPGWeChatUser sees what committed before it started, so it finds a
// user that a concurrent login inserted as it does outside a transaction.
func (p *Postgres) StartWeChatSession(ctx context.Context, in WeChatLogin, first RefreshToken) (User, bool, error) {
	const op = "start wechat session"
	if err := checkWeChatSession(in, first); err != nil {
		return User{}, false, fmt.Errorf("store: %s: %w", op, err)
	}
	var (
		u       User
		created bool
	)
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var err error
		u, created, err = upsertPGWeChatUser(ctx, tx, in)
		if err != nil || u.Disabled {
			return err
		}
		first.UserID = u.ID
		return insertPGRefreshToken(ctx, tx, first)
	})
	if err != nil {
		return User{}, false, p.wrap(op, err)
	}
	return u, created, nil
}

// upsertPGWeChatUser updates the user if there is one, else inserts it
// unless a concurrent login inserted it first (the unique index makes the
// insert wait for that one and then do nothing), and then updates the user
// that login created. No user is ever deleted, so the second update finds
// it.
func upsertPGWeChatUser(ctx context.Context, q pgQuerier, in WeChatLogin) (User, bool, error) {
	var pr Profile
	if in.Profile != nil {
		pr = *in.Profile
	}
	args := []any{in.AppID, in.OpenID, nullBytes(in.SessionKey), nullString(in.UnionID),
		optString(pr.Nickname), optString(pr.AvatarURL), optInt(pr.Gender), in.Now}
	update := func() (User, error) { return scanPGUser(q.QueryRow(ctx, pgUpdateWeChatUserSQL, args...)) }

	u, err := update()
	if !errors.Is(err, pgx.ErrNoRows) {
		return u, false, err
	}
	u, err = scanPGUser(q.QueryRow(ctx, pgInsertWeChatUserSQL, append(args, pgRoles(in.DefaultRoles))...))
	if !errors.Is(err, pgx.ErrNoRows) {
		return u, err == nil, err
	}
	u, err = update()
	return u, false, err
}

// CreatePasswordUser inserts a username/password user; ErrConflict if the
// username is taken.
func (p *Postgres) CreatePasswordUser(ctx context.Context, in NewPasswordUser) (User, error) {
	if in.Username == "" {
		return User{}, errors.New("store: create password user: username is required")
	}
	u, err := scanPGUser(p.pool.QueryRow(ctx, `INSERT INTO users (username, password_hash, roles, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		RETURNING `+userColumns, in.Username, nullString(in.PasswordHash), pgRoles(in.Roles), in.Now))
	if err != nil {
		return User{}, p.wrap("create password user", err)
	}
	return u, nil
}

// UserByID returns the user with id, or ErrNotFound.
func (p *Postgres) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanPGUser(p.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, p.wrap("user by id", err)
	}
	return u, nil
}

// UserByUsername returns the user whose username is exactly username, or
// ErrNotFound.
func (p *Postgres) UserByUsername(ctx context.Context, username string) (User, error) {
	// username is COLLATE "C": "=" compares byte for byte. An empty name
	// matches nothing because absent usernames are NULL.
	u, err := scanPGUser(p.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if err != nil {
		return User{}, p.wrap("user by username", err)
	}
	return u, nil
}

// Users lists all users ordered by id.
func (p *Postgres) Users(ctx context.Context) ([]User, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, p.wrap("users", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanPGUser(r) })
	if err != nil {
		return nil, p.wrap("users", err)
	}
	if users == nil {
		users = []User{}
	}
	return users, nil
}

// UpdateProfile changes the non-nil fields of p.
func (p *Postgres) UpdateProfile(ctx context.Context, id int64, pr Profile, now time.Time) (User, error) {
	return p.updateUser(ctx, "update profile", `UPDATE users SET
			nickname = COALESCE($3, nickname),
			avatar_url = COALESCE($4, avatar_url),
			gender = COALESCE($5, gender),
			updated_at = $2
		WHERE id = $1 RETURNING `+userColumns,
		id, now, optString(pr.Nickname), optString(pr.AvatarURL), optInt(pr.Gender))
}

// pgSetRolesSQL replaces the roles and, in the same statement, bumps the
// token version unless the old and new roles are the same set. SET
// expressions see the row as it was, and the row lock makes concurrent
// changes take turns, so no change of the role set can be missed.
const pgSetRolesSQL = `UPDATE users SET
		roles = $3,
		token_version = CASE WHEN roles @> $3 AND roles <@ $3 THEN token_version ELSE token_version + 1 END,
		token_version_at = CASE WHEN roles @> $3 AND roles <@ $3 THEN token_version_at ELSE $2 END,
		updated_at = $2
	WHERE id = $1 RETURNING ` + userColumns

// SetRoles replaces the user's roles; nil means none.
func (p *Postgres) SetRoles(ctx context.Context, id int64, roles []string, now time.Time) (User, error) {
	return p.updateUser(ctx, "set roles", pgSetRolesSQL, id, now, pgRoles(roles))
}

// SetDisabled disables or enables the user; disabling cuts off the user's
// access tokens.
func (p *Postgres) SetDisabled(ctx context.Context, id int64, disabled bool, now time.Time) (User, error) {
	if disabled {
		return p.updateUser(ctx, "set disabled", `UPDATE users SET
				disabled = true, token_version = token_version + 1, token_version_at = $2, updated_at = $2
			WHERE id = $1 RETURNING `+userColumns, id, now)
	}
	return p.updateUser(ctx, "set disabled", `UPDATE users SET disabled = false, updated_at = $2
		WHERE id = $1 RETURNING `+userColumns, id, now)
}

// SetPasswordHash replaces the user's password hash.
func (p *Postgres) SetPasswordHash(ctx context.Context, id int64, hash string, now time.Time) (User, error) {
	return p.updateUser(ctx, "set password hash", `UPDATE users SET password_hash = $3, updated_at = $2
		WHERE id = $1 RETURNING `+userColumns, id, now, nullString(hash))
}

// updateUser runs query, an UPDATE … RETURNING userColumns whose first two
// parameters are the id and the time, and returns the updated row.
func (p *Postgres) updateUser(ctx context.Context, op, query string, id int64, now time.Time, args ...any) (User, error) {
	u, err := scanPGUser(p.pool.QueryRow(ctx, query, append([]any{id, now}, args...)...))
	if err != nil {
		return User{}, p.wrap(op, err)
	}
	return u, nil
}

// RecordLogin sets the user's LastLoginAt, leaving UpdatedAt alone.
func (p *Postgres) RecordLogin(ctx context.Context, id int64, now time.Time) error {
	tag, err := p.pool.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, id, now)
	if err != nil {
		return p.wrap("record login", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: record login: %w", ErrNotFound)
	}
	return nil
}

// wrap adds op to err and classifies it: pgx.ErrNoRows becomes ErrNotFound,
// a unique violation ErrConflict, a foreign-key violation (a row naming a
// user that does not exist) ErrNotFound, and failures to reach or use the
// database at all ErrUnavailable. The server's message texts name
// constraints, not values; the details that do name values are not part of
// a PgError's Error text.
func (p *Postgres) wrap(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("store: %s: %w: %w", op, ErrConflict, err)
		case pe.Code == "23503": // foreign_key_violation
			return fmt.Errorf("store: %s: %w: %w", op, ErrNotFound, err)
		case pgUnavailableCode(pe.Code):
			return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
		}
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if p.closed.Load() || pgUnreachable(err) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// pgUnavailableCode reports whether a SQLSTATE means that the server could
// not do the work at all, for now, as opposed to a problem with the
// statement: the answer to the client is then 503, not 500.
func pgUnavailableCode(code string) bool {
	switch code {
	case "57014", // query_canceled: statement_timeout
		"55P03", // lock_not_available
		"40001", // serialization_failure
		"40P01", // deadlock_detected
		"25006": // read_only_sql_transaction: a standby after a failover
		return true
	}
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "53"),  // insufficient resources: too many connections, disk full
		strings.HasPrefix(code, "57P"), // admin or crash shutdown, cannot connect now
		strings.HasPrefix(code, "58"):  // system error: I/O
		return true
	}
	return false
}

// pgUnreachable reports whether err, which is not from the server, means the
// server could not be reached: no connection, a connection lost, or no
// answer in time. The caller's own cancellation is not such a failure.
func pgUnreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		// pgconn marks errors that happened before anything was sent,
		// such as a closed connection, safe to retry.
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// scanPGUser reads the userColumns of one row.
func scanPGUser(r pgx.Row) (User, error) {
	var (
		u                                         User
		appid, openid, unionid, username, pwdHash *string
		lastLogin, versionAt                      *time.Time
	)
	err := r.Scan(&u.ID, &appid, &openid, &unionid, &username, &pwdHash, &u.Nickname, &u.AvatarURL,
		&u.Gender, &u.Roles, &u.Disabled, &u.SessionKey, &u.CreatedAt, &u.UpdatedAt, &lastLogin, &u.TokenVersion, &versionAt)
	if err != nil {
		return User{}, err
	}
	u.AppID, u.OpenID, u.UnionID = deref(appid), deref(openid), deref(unionid)
	u.Username, u.PasswordHash = deref(username), deref(pwdHash)
	if u.Roles == nil {
		u.Roles = []string{}
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	u.LastLoginAt, u.TokenVersionAt = fromPGNullTime(lastLogin), fromPGNullTime(versionAt)
	return u, nil
}

// pgRoles is roles as a text[] parameter: pgx would send a nil slice as
// NULL, and the column holds the empty array instead.
func pgRoles(roles []string) []string {
	if roles == nil {
		return []string{}
	}
	return roles
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fromPGNullTime is a nullable timestamptz as the store returns it: UTC, or
// the zero time for NULL. pgx truncates times to microseconds when it sends
// them, as SQLite's UnixMicro does.
func fromPGNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
