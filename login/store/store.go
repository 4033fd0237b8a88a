// Package store keeps frontdoor's durable state: users, signing keys,
// refresh tokens and access-token revocations. One interface, Store, has two
// implementations: SQLite (the embedded default) and PostgreSQL (for several
// replicas). Both must pass the same conformance suite.
//
// Times are stored with microsecond precision and returned in UTC.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every Store implementation; match them with errors.Is.
var (
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint (username, appid+openid, kid) was violated.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable wraps failures to reach the database at all (connection
	// refused, pool closed), so callers can answer 503 rather than 500.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrRefreshReused means a refresh token that had already been rotated
	// was presented again: it was stolen or replayed, and its whole family
	// has been revoked.
	ErrRefreshReused = errors.New("store: refresh token reused")
)

// Config is the `store:` section of config.yaml.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is a file path for sqlite, a postgres:// URL (or a key=value
	// connection string) for postgres.
	DSN string `yaml:"dsn"`
	// MaxConns is the most connections the PostgreSQL pool opens (default
	// 10). It overrides a pool_max_conns in the DSN. SQLite ignores it.
	MaxConns int `yaml:"max_conns"`
	// ConnectTimeout bounds each attempt to connect to PostgreSQL (default
	// 5s), so that logins fail fast with ErrUnavailable while the database
	// is unreachable. It overrides a connect_timeout in the DSN. SQLite
	// ignores it.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// StatementTimeout is PostgreSQL's statement_timeout for every pooled
	// session (default 5s; 0 means none): a statement stuck behind a lock
	// or an overloaded server fails with ErrUnavailable instead of holding
	// a login forever. Migrations run without it. SQLite ignores it; its
	// lock waits are bounded by BusyTimeout.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
}

// SigningKey is one RSA private key used to sign access tokens.
//
// A key is active from ActivatedAt until RetiredAt (zero while it still
// signs). Exactly one key is active at a time; retired keys are kept so that
// tokens they signed still verify until those tokens expire.
type SigningKey struct {
	// ID is the key id: the RFC 7638 JWK thumbprint of the public key.
	ID string
	// PrivatePEM is the PKCS#8 "PRIVATE KEY" PEM encoding of the RSA key.
	PrivatePEM []byte
	CreatedAt  time.Time
	// ActivatedAt is when the key started signing.
	ActivatedAt time.Time
	// RetiredAt is when the key stopped signing; zero for the active key.
	RetiredAt time.Time
}

// Active reports whether the key is the one that signs.
func (k SigningKey) Active() bool { return k.RetiredAt.IsZero() }

// User is one account. A user has a WeChat identity (AppID+OpenID), a
// username+password, or both.
type User struct {
	ID           int64
	AppID        string
	OpenID       string
	UnionID      string
	Username     string
	PasswordHash string
	Nickname     string
	AvatarURL    string
	Gender       int
	Roles        []string
	Disabled     bool
	// SessionKey is the WeChat session_key exactly as the login package
	// stored it: sealed with AES-GCM when FRONTDOOR_SECRET_KEY is set.
	// The store never interprets it.
	SessionKey  []byte
	CreatedAt   time.Time
	UpdatedAt   time.Time
	LastLoginAt time.Time // zero if the user never logged in
	// TokenVersion is the per-user cutoff of access tokens: every token
	// carries the version current when it was issued, and a token below the
	// user's current version is revoked. It starts at 0 and increases when
	// the user's role set changes or the user is disabled. A counter rather
	// than a time because token issue times have one-second precision.
	TokenVersion int64
	// TokenVersionAt is when TokenVersion last increased; zero if never.
	TokenVersionAt time.Time
}

// HasWeChat reports whether the user is linked to a WeChat openid.
func (u User) HasWeChat() bool { return u.OpenID != "" }

// Profile is the user-visible part of a user that WeChat's userInfo or
// PATCH /auth/me can change. Nil pointer fields are left unchanged.
type Profile struct {
	Nickname  *string
	AvatarURL *string
	Gender    *int
}

// WeChatLogin is the input of a successful code2Session exchange.
type WeChatLogin struct {
	AppID      string
	OpenID     string
	UnionID    string // may be empty; a non-empty value replaces the stored one
	SessionKey []byte // already sealed by the caller
	// DefaultRoles are given to the user only when it is created.
	DefaultRoles []string
	// Profile, when non-nil, updates the profile (new or existing user).
	Profile *Profile
	Now     time.Time
}

// NewPasswordUser is the input of CreatePasswordUser.
type NewPasswordUser struct {
	Username     string
	PasswordHash string
	Roles        []string
	Now          time.Time
}

// RefreshToken is one refresh token, stored only as the SHA-256 of its
// value. Every token rotated from one login shares its FamilyID; revoking a
// family ends that login session.
type RefreshToken struct {
	// Hash is the SHA-256 of the token string (32 bytes), the primary key.
	Hash      []byte
	FamilyID  string
	UserID    int64
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RotatedAt is when the token was exchanged for its successor; zero
	// while it is the family's current token.
	RotatedAt time.Time
	// RevokedAt is when its family was revoked; zero unless it was.
	RevokedAt time.Time
}

// DeniedJTI is an access token revoked before it expires, by its jti claim.
type DeniedJTI struct {
	JTI string
	// ExpiresAt is the token's exp: after it the entry is no longer needed.
	ExpiresAt time.Time
	DeniedAt  time.Time
}

// UserVersion is a user's TokenVersion and when it last changed.
type UserVersion struct {
	UserID    int64
	Version   int64
	ChangedAt time.Time
}

// Store is the persistence contract shared by the SQLite and PostgreSQL
// implementations. All methods are safe for concurrent use, including by
// several processes on the same database (serve and the CLI, or replicas).
type Store interface {
	// SigningKeys returns every stored key, newest ActivatedAt first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// ActivateSigningKey atomically retires the active key (RetiredAt = k.ActivatedAt)
	// and inserts k as the new active key. ErrConflict if k.ID already exists.
	ActivateSigningKey(ctx context.Context, k SigningKey) error
	// EnsureSigningKey inserts the key made by generate only if there is no
	// active key, atomically: when several processes start at once exactly one
	// key is created. It reports whether it inserted one.
	EnsureSigningKey(ctx context.Context, generate func() (SigningKey, error)) (bool, error)
	// DeleteSigningKeysRetiredBefore removes retired keys with RetiredAt < t.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error)

	// UpsertWeChatUser finds the user by (AppID, OpenID) or creates it,
	// atomically: concurrent first logins of one openid create one user. It
	// records the session key, unionid, profile and LastLoginAt = Now.
	UpsertWeChatUser(ctx context.Context, in WeChatLogin) (u User, created bool, err error)
	// StartWeChatSession is a WeChat login's writes in one transaction:
	// UpsertWeChatUser(in), then, unless the user is disabled,
	// CreateRefreshToken(first) with first.UserID set to the user's id.
	// first.UserID must be zero and first.FamilyID set. If the token cannot
	// be stored (ErrConflict for an existing hash) nothing changes: no user
	// is created and a returning one is not updated. A disabled user is
	// updated as by UpsertWeChatUser but gets no token; the caller, seeing
	// u.Disabled, refuses the login.
	StartWeChatSession(ctx context.Context, in WeChatLogin, first RefreshToken) (u User, created bool, err error)
	// CreatePasswordUser inserts a username/password user; ErrConflict if the
	// username is taken.
	CreatePasswordUser(ctx context.Context, in NewPasswordUser) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// UserByUsername matches the username exactly (case-sensitive, literal).
	UserByUsername(ctx context.Context, username string) (User, error)
	// Users lists all users ordered by id.
	Users(ctx context.Context) ([]User, error)
	UpdateProfile(ctx context.Context, id int64, p Profile, now time.Time) (User, error)
	// SetRoles replaces the user's roles (nil means none). When the role set
	// differs from the stored one (order and duplicates aside) it also
	// increments TokenVersion and sets TokenVersionAt = now, atomically with
	// the change, so that tokens carrying the old roles are revoked.
	SetRoles(ctx context.Context, id int64, roles []string, now time.Time) (User, error)
	// SetDisabled disables or enables the user. Disabling increments
	// TokenVersion and sets TokenVersionAt = now, atomically with the change,
	// every time, also for a user already disabled: it is the operator's
	// way to cut off every access token of the user. Enabling leaves the
	// version alone; tokens revoked by the disable stay revoked.
	SetDisabled(ctx context.Context, id int64, disabled bool, now time.Time) (User, error)
	SetPasswordHash(ctx context.Context, id int64, hash string, now time.Time) (User, error)
	RecordLogin(ctx context.Context, id int64, now time.Time) error
	// UserVersionsSince lists the users whose TokenVersionAt is after since,
	// oldest change first. Replicas poll it to learn cutoffs made by other
	// processes; since TokenVersionAt is the changing process's clock and a
	// change becomes visible only when it commits, they should overlap
	// their polling windows by a few seconds.
	UserVersionsSince(ctx context.Context, since time.Time) ([]UserVersion, error)

	// CreateRefreshToken stores a new token, normally the first of a new
	// family (a login). RotatedAt and RevokedAt are ignored: a new token is
	// live. ErrNotFound if no user has t.UserID, ErrConflict if the hash
	// exists.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken atomically consumes the token whose hash is old and
	// stores next as its successor. next.FamilyID and next.UserID are copied
	// from old's when zero; set to anything else they are an error, as are a
	// malformed hash or times of next, and then nothing changes.
	//
	//   - old is unknown, expired (ExpiresAt <= now) or revoked: ErrNotFound,
	//     and nothing changes.
	//   - old was already rotated (it is being reused, so it was stolen or
	//     replayed): every token of its family, the newest included, is
	//     revoked with RevokedAt = now, and the result is the old token
	//     (revoked) with ErrRefreshReused. The revocation is committed
	//     although an error is returned.
	//   - otherwise old gets RotatedAt = now, next is inserted, and the
	//     result is old as updated, so that the caller learns its UserID and
	//     FamilyID.
	//
	// Of concurrent rotations of one token exactly one succeeds; the next
	// finds it rotated and so revokes the family, the winner's new token
	// included (ErrRefreshReused), and the rest find it revoked (ErrNotFound,
	// or also ErrRefreshReused). That is deliberate: a store cannot tell a
	// client's duplicate request from a thief's, so clients must not
	// refresh one token twice at once.
	RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeRefreshFamily revokes every token of the family of the token
	// whose hash is given (logout) and returns the family's user id.
	// ErrNotFound if the hash is unknown. Revoking a revoked family succeeds
	// and keeps the first RevokedAt.
	RevokeRefreshFamily(ctx context.Context, hash []byte, now time.Time) (userID int64, err error)
	// RevokeUserRefreshTokens revokes every unrevoked, unexpired refresh
	// token of the user (when the user is disabled) and returns how many
	// sessions that ended: the number of families whose current token was
	// live. Tokens of other users are untouched.
	RevokeUserRefreshTokens(ctx context.Context, userID int64, now time.Time) (int, error)

	// DenyJTI revokes the access token with this jti until expiresAt, its
	// exp. Denying a denied jti again succeeds and keeps the first entry.
	DenyJTI(ctx context.Context, jti string, expiresAt, now time.Time) error
	// DeniedJTIsSince lists the entries with DeniedAt after since and
	// ExpiresAt after now, oldest DeniedAt first. It is cheap (indexed) for
	// a recent since, because every replica polls it every few seconds;
	// as with UserVersionsSince, pollers should overlap their windows.
	DeniedJTIsSince(ctx context.Context, since, now time.Time) ([]DeniedJTI, error)

	// DeleteExpired deletes the refresh tokens and denied jtis with
	// ExpiresAt <= now and returns how many of each it deleted. Rotated and
	// revoked tokens that have not expired are kept: a rotated one is what
	// detects a reuse, a revoked one makes a repeated logout succeed. On an
	// error, the counts report what was deleted before it.
	DeleteExpired(ctx context.Context, now time.Time) (refresh, jtis int, err error)

	// TryLock runs fn while holding the cluster-wide lock called name,
	// unless another process or goroutine holds it; then it returns false
	// at once without running fn. Replicas use it so that one at a time
	// does periodic work such as automatic signing-key rotation. fn's error
	// is returned as is, with ran true.
	//
	// The lock saves duplicated work; it is not a guarantee on which
	// correctness may rest. It lapses if the holder loses its database
	// session (PostgreSQL) or holds it past a one-minute lease (SQLite),
	// and another process may then take it while fn still runs, so fn
	// must stay correct if run twice at once. For the same reason a lock
	// that cannot be released is left to lapse, and TryLock reports only
	// fn's error. A nested TryLock of a name the caller holds returns false.
	TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}
