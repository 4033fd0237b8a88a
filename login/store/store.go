// Package store keeps frontdoor's durable state: users, signing keys and (in
// later migrations) refresh tokens and revocations. One interface, Store, has
// two implementations: SQLite (the embedded default) and PostgreSQL (for
// several replicas). Both must pass the same conformance suite.
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
)

// Config is the `store:` section of config.yaml.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is a file path for sqlite, a postgres:// URL for postgres.
	DSN string `yaml:"dsn"`
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
	// CreatePasswordUser inserts a username/password user; ErrConflict if the
	// username is taken.
	CreatePasswordUser(ctx context.Context, in NewPasswordUser) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// UserByUsername matches the username exactly (case-sensitive, literal).
	UserByUsername(ctx context.Context, username string) (User, error)
	// Users lists all users ordered by id.
	Users(ctx context.Context) ([]User, error)
	UpdateProfile(ctx context.Context, id int64, p Profile, now time.Time) (User, error)
	SetRoles(ctx context.Context, id int64, roles []string, now time.Time) (User, error)
	SetDisabled(ctx context.Context, id int64, disabled bool, now time.Time) (User, error)
	SetPasswordHash(ctx context.Context, id int64, hash string, now time.Time) (User, error)
	RecordLogin(ctx context.Context, id int64, now time.Time) error

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}
