// Package session holds the parts of the session lifecycle that sit beside
// token verification: refresh-token values, and the in-memory view of
// revoked access tokens (logged-out jtis and per-user token versions) that
// every request consults without touching the store.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"frontdoor/login/store"
	"frontdoor/login/token"
)

// NewRefreshToken returns a fresh refresh token (256 random bits, base64url)
// and the SHA-256 hash under which it is stored. The value itself is never
// stored.
func NewRefreshToken() (value string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	value = base64.RawURLEncoding.EncodeToString(b[:])
	return value, HashRefreshToken(value), nil
}

// HashRefreshToken is the stored form of a refresh token value.
func HashRefreshToken(value string) []byte {
	sum := sha256.Sum256([]byte(value))
	return sum[:]
}

// Source is what Revocations reads from the store.
type Source interface {
	DeniedJTIsSince(ctx context.Context, since, now time.Time) ([]store.DeniedJTI, error)
	UserVersionsSince(ctx context.Context, since time.Time) ([]store.UserVersion, error)
}

// syncOverlap re-reads entries this much older than the newest one seen, so
// that an entry written by a replica whose clock lags is not skipped.
const syncOverlap = 30 * time.Second

// Revocations answers "is this verified token revoked?" from memory, so the
// request path never touches the store. Updates (logouts, role changes, the
// periodic sync) are O(1) under the write lock; reads share a read lock.
type Revocations struct {
	issuer string

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti → token expiry
	versions map[int64]int64      // user id → current token version
	jtiMark  time.Time            // newest DeniedAt seen
	userMark time.Time            // newest version ChangedAt seen
	lastSync atomic.Int64
}

// NewRevocations makes an empty view. Only tokens of issuer (frontdoor's own)
// are subject to the per-user version check: another issuer's subjects are
// not our user ids.
func NewRevocations(issuer string) *Revocations {
	return &Revocations{issuer: issuer, jtis: map[string]time.Time{}, versions: map[int64]int64{}}
}

// Revoked reports whether a verified token has been revoked: its jti was
// denied by a logout, or it was issued before its user's current token
// version (the user was disabled or their roles changed).
func (r *Revocations) Revoked(c *token.Claims) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.ID != "" && len(r.jtis) > 0 {
		if _, ok := r.jtis[c.ID]; ok {
			return true
		}
	}
	if len(r.versions) > 0 && c.Issuer == r.issuer {
		if id, err := strconv.ParseInt(c.Subject, 10, 64); err == nil {
			if v, ok := r.versions[id]; ok && c.Version < v {
				return true
			}
		}
	}
	return false
}

// Deny records a logout on this replica at once, before the store round
// trip that tells the others.
func (r *Revocations) Deny(jti string, expiresAt time.Time) {
	r.apply([]store.DeniedJTI{{JTI: jti, ExpiresAt: expiresAt}}, nil)
}

// SetVersion records a user's new token version on this replica at once.
func (r *Revocations) SetVersion(userID, version int64) {
	r.apply(nil, []store.UserVersion{{UserID: userID, Version: version}})
}

// Sync reads what changed in the store since the last sync (the first call
// loads everything) and forgets denied jtis whose tokens have expired.
func (r *Revocations) Sync(ctx context.Context, src Source, now time.Time) error {
	r.mu.RLock()
	jtiSince, userSince := r.jtiMark, r.userMark
	r.mu.RUnlock()
	if !jtiSince.IsZero() {
		jtiSince = jtiSince.Add(-syncOverlap)
	}
	if !userSince.IsZero() {
		userSince = userSince.Add(-syncOverlap)
	}
	jtis, err := src.DeniedJTIsSince(ctx, jtiSince, now)
	if err != nil {
		return err
	}
	users, err := src.UserVersionsSince(ctx, userSince)
	if err != nil {
		return err
	}
	r.apply(jtis, users)
	r.expire(now)
	r.lastSync.Store(now.UnixNano())
	return nil
}

// LastSync is when Sync last succeeded (zero if never).
func (r *Revocations) LastSync() time.Time {
	if ns := r.lastSync.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Run syncs every interval until ctx ends; errors are reported to onError
// and the previous view stays in force (a store outage must not let revoked
// tokens back in, nor stop valid ones).
func (r *Revocations) Run(ctx context.Context, src Source, interval time.Duration, now func() time.Time, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Sync(ctx, src, now()); err != nil && ctx.Err() == nil && onError != nil {
				onError(err)
			}
		}
	}
}

func (r *Revocations) apply(jtis []store.DeniedJTI, users []store.UserVersion) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range jtis {
		if j.DeniedAt.After(r.jtiMark) {
			r.jtiMark = j.DeniedAt
		}
		r.jtis[j.JTI] = j.ExpiresAt
	}
	for _, u := range users {
		if u.ChangedAt.After(r.userMark) {
			r.userMark = u.ChangedAt
		}
		if r.versions[u.UserID] < u.Version {
			r.versions[u.UserID] = u.Version
		}
	}
}

// expire drops denied jtis whose tokens would fail verification anyway.
func (r *Revocations) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for jti, exp := range r.jtis {
		if !exp.Add(token.Leeway).After(now) {
			delete(r.jtis, jti)
		}
	}
}

// Size reports how many jtis and user versions are held (metrics, tests).
func (r *Revocations) Size() (jtis, users int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.jtis), len(r.versions)
}

// TokenVerifier checks access tokens (token.Verifier implements it).
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*token.Claims, error)
}

// Verifier is a TokenVerifier that also refuses revoked tokens: the one the
// proxy and the /auth/ API use.
type Verifier struct {
	inner TokenVerifier
	rev   *Revocations
}

// NewVerifier wraps inner with the revocation check.
func NewVerifier(inner TokenVerifier, rev *Revocations) *Verifier {
	return &Verifier{inner: inner, rev: rev}
}

// Verify verifies raw and then checks it is not revoked.
func (v *Verifier) Verify(ctx context.Context, raw string) (*token.Claims, error) {
	c, err := v.inner.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if v.rev.Revoked(c) {
		return nil, &token.VerifyError{Reason: token.ReasonRevoked}
	}
	return c, nil
}
