package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"frontdoor/internal/apierror"
	"frontdoor/login/store"
)

// badCredentials is the one answer to an unknown username and to a wrong
// password alike, so that the response tells nothing about which it was.
const badCredentials = "wrong username or password"

// MaxUsernameBytes bounds a username. It also bounds the memory that the
// per-username limiter and the lockout table spend on each key.
const MaxUsernameBytes = 128

// ErrUsernamePolicy is wrapped by every error of CheckUsername.
var ErrUsernamePolicy = errors.New("username policy")

// CheckUsername applies the rules for a new username: 1 to MaxUsernameBytes
// bytes of UTF-8 without control characters, and not all digits, so that a
// username is never mistaken for a numeric user id (the CLI accepts both).
// Usernames are otherwise stored and compared literally: case, spaces and
// quotes all count, and nothing is trimmed or normalised.
func CheckUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the username is empty", ErrUsernamePolicy)
	case len(name) > MaxUsernameBytes:
		return fmt.Errorf("%w: the username is longer than %d bytes", ErrUsernamePolicy, MaxUsernameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the username is not valid UTF-8", ErrUsernamePolicy)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the username contains a control character", ErrUsernamePolicy)
	case strings.Trim(name, "0123456789") == "":
		return fmt.Errorf("%w: the username is all digits, which would read as a user id", ErrUsernamePolicy)
	}
	return nil
}

// passwordLoginRequest is the body of POST /auth/login. Other fields are
// ignored, as for the WeChat login.
type passwordLoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// problem checks the request's shape. It depends only on the request, never
// on whether the username exists.
func (req *passwordLoginRequest) problem() string {
	switch {
	case req.Username == "" || req.Password == "":
		return "username and password are required"
	case len(req.Username) > MaxUsernameBytes:
		return "username is longer than " + strconv.Itoa(MaxUsernameBytes) + " bytes"
	case len(req.Password) > MaxPasswordBytes:
		return "password is longer than " + strconv.Itoa(MaxPasswordBytes) + " bytes"
	}
	return ""
}

// passwordLogin checks a username and password and answers with tokens
// (amr "pwd").
//
// Every step before the answer is the same for an unknown username and a
// wrong password: both are rate limited and locked out per username, both
// cost one argon2id verification (against a dummy hash for an unknown
// username), and both get the same 401. A disabled account is reported (403)
// only to a caller who gave its right password.
func (a *API) passwordLogin(w http.ResponseWriter, r *http.Request) {
	const method = "password"
	s := a.settings.Load()
	if !s.cfg.Password.Enabled {
		apierror.Write(w, http.StatusNotFound, apierror.NotFound, "password login is not enabled")
		return
	}
	if !a.allowIP(w, r, s) {
		a.metrics.login(method, "rate_limited")
		return
	}
	var req passwordLoginRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		a.refuse(w, method, "invalid_request", http.StatusBadRequest, apierror.InvalidRequest, err.Error())
		return
	}
	if msg := req.problem(); msg != "" {
		a.refuse(w, method, "invalid_request", http.StatusBadRequest, apierror.InvalidRequest, msg)
		return
	}
	now := a.now()
	if ok, wait := s.userLimiter.allow(req.Username, now); !ok {
		a.metrics.limited("username")
		a.metrics.login(method, "rate_limited")
		tooMany(w, wait)
		return
	}
	if wait := s.lockouts.remaining(req.Username, now); wait > 0 {
		a.metrics.login(method, "locked_out")
		tooMany(w, wait)
		return
	}

	ctx := r.Context()
	u, err := a.store.UserByUsername(ctx, req.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.metrics.login(method, "error")
		a.storeFailure(w, "user by username", err)
		return
	}
	known := err == nil && u.PasswordHash != ""
	encoded := s.dummyHash
	if known {
		encoded = u.PasswordHash
	}
	ok, params, err := a.verifyPassword(ctx, encoded, req.Password)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The client left while waiting for a hashing slot.
		a.metrics.login(method, "canceled")
		return
	case err != nil:
		// Answered like a wrong password: the account exists, but a corrupt
		// hash must not become a way to tell.
		a.log.Error("stored password hash cannot be verified", zap.String("user_id", strconv.FormatInt(u.ID, 10)), zap.Error(err))
		ok = false
	}
	if !ok || !known {
		if s.lockouts.fail(req.Username, now) {
			a.metrics.lockout()
			if known {
				a.log.Warn("password login locked out", zap.String("user_id", strconv.FormatInt(u.ID, 10)),
					zap.Duration("for", s.cfg.RateLimit.LockoutFor))
			}
		}
		result := "wrong_password"
		if !known {
			result = "unknown_user"
		}
		a.refuse(w, method, result, http.StatusUnauthorized, apierror.InvalidGrant, badCredentials)
		return
	}
	s.lockouts.succeed(req.Username)
	if u.Disabled {
		a.refuse(w, method, "disabled", http.StatusForbidden, apierror.AccessDenied, "this account is disabled")
		return
	}
	if current := s.cfg.Password.params(); params != current {
		a.upgradeHash(ctx, u, req.Password, current)
	}
	if err := a.store.RecordLogin(ctx, u.ID, now); err != nil {
		// The login itself is sound; only the "last login" column is stale.
		a.log.Warn("record login", zap.String("user_id", strconv.FormatInt(u.ID, 10)), zap.Error(err))
	}
	if err := a.issueTokens(ctx, w, u, "pwd", false); err != nil {
		a.metrics.login(method, "error")
		a.log.Error("issue tokens", zap.Error(err))
		apierror.Write(w, http.StatusInternalServerError, apierror.ServerError, "internal error")
		return
	}
	a.metrics.login(method, "ok")
	a.log.Info("login", zap.String("method", method), zap.String("user_id", strconv.FormatInt(u.ID, 10)))
}

// verifyPassword runs verifyPassword in one of the API's hashing slots.
func (a *API) verifyPassword(ctx context.Context, encoded, password string) (bool, argon2Params, error) {
	if err := a.acquireHashSlot(ctx); err != nil {
		return false, argon2Params{}, err
	}
	defer a.releaseHashSlot()
	return verifyPassword(encoded, password)
}

// upgradeHash replaces a hash made under older parameters after a successful
// login, so that raising the cost reaches every active account. It gives up
// quietly if the password changed meanwhile (a concurrent `users passwd`
// must win) or on any error: the old hash still verifies.
func (a *API) upgradeHash(ctx context.Context, u store.User, password string, p argon2Params) {
	if a.acquireHashSlot(ctx) != nil {
		return
	}
	fresh := hashPassword(password, p)
	a.releaseHashSlot()
	cur, err := a.store.UserByID(ctx, u.ID)
	if err != nil || cur.PasswordHash != u.PasswordHash {
		return
	}
	if _, err := a.store.SetPasswordHash(ctx, u.ID, fresh, a.now()); err != nil {
		a.log.Warn("upgrade password hash", zap.String("user_id", strconv.FormatInt(u.ID, 10)), zap.Error(err))
	}
}

// newHashSlots bounds the argon2id computations running at once. Each holds
// argon2_memory_kib of memory, so without a bound a burst of logins (spread
// over enough addresses to pass the per-IP limit) could exhaust memory;
// more than one per core would not finish any sooner anyway.
func newHashSlots() chan struct{} {
	return make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
}

func (a *API) acquireHashSlot(ctx context.Context) error {
	select {
	case a.hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *API) releaseHashSlot() { <-a.hashSlots }

// reloadPassword fills next's password-login state from its config, keeping
// old's limiter, lockouts and dummy hash where the settings they derive
// from did not change, so that a reload neither forgives an attacker nor
// costs a hash.
func reloadPassword(next, old *settings) {
	cfg, rl := next.cfg.Password, next.cfg.RateLimit
	if old != nil && old.cfg.RateLimit.PerUsernamePerMinute == rl.PerUsernamePerMinute {
		next.userLimiter = old.userLimiter
	} else {
		next.userLimiter = newKeyedLimiter(rl.PerUsernamePerMinute, limiterCapacity)
	}
	if old != nil && old.cfg.RateLimit.LockoutAfter == rl.LockoutAfter && old.cfg.RateLimit.LockoutFor == rl.LockoutFor {
		next.lockouts = old.lockouts
	} else {
		next.lockouts = newLockoutTable(rl.LockoutAfter, rl.LockoutFor, limiterCapacity)
	}
	switch p := cfg.params(); {
	case !cfg.Enabled:
	case old != nil && old.dummyHash != "" && old.cfg.Password.params() == p:
		next.dummyHash = old.dummyHash
	default:
		if field, _ := p.problem(); field == "" {
			next.dummyHash = dummyHash(p)
		}
	}
}

// lockoutTable counts consecutive password failures per username and locks
// a username for a while once they reach a threshold. Memory is bounded the
// way keyedLimiter's is: records live in two generations that rotate every
// lockout period, or early when the current one is full. A record is
// useless once its lock has ended and its last failure is a period old, and
// a time-based rotation only ever drops records that old; an early rotation
// can forget a lock, but only after cap records of failures from other
// usernames, each of which cost the attacker an argon2id verification and
// passed the per-IP limit.
type lockoutTable struct {
	after  int
	period time.Duration
	max    int

	mu        sync.Mutex
	cur, prev map[string]*failures
	rotateAt  time.Time
}

// failures is one username's record.
type failures struct {
	count int       // consecutive failures since the last lock or success
	last  time.Time // the latest failure
	until time.Time // end of the lock; zero when not locked
}

// newLockoutTable locks a key for period after `after` consecutive failures.
// It returns nil, which never locks, when either is zero.
func newLockoutTable(after int, period time.Duration, max int) *lockoutTable {
	if after <= 0 || period <= 0 {
		return nil
	}
	return &lockoutTable{after: after, period: period, max: max,
		cur: map[string]*failures{}, prev: map[string]*failures{}}
}

// record returns key's live record, promoting it to the current generation,
// or nil. The caller holds l.mu.
func (l *lockoutTable) record(key string, now time.Time) *failures {
	if now.After(l.rotateAt) || len(l.cur) >= l.max {
		l.prev, l.cur = l.cur, make(map[string]*failures, len(l.cur))
		l.rotateAt = now.Add(l.period)
	}
	f, ok := l.cur[key]
	if !ok {
		if f, ok = l.prev[key]; !ok {
			return nil
		}
		delete(l.prev, key)
		l.cur[key] = f
	}
	if !now.Before(f.until) && now.Sub(f.last) >= l.period {
		// Failures spread thinner than one per period are not an attack on
		// this username; they are forgotten.
		delete(l.cur, key)
		return nil
	}
	return f
}

// remaining is how long key stays locked; 0 when it is not.
func (l *lockoutTable) remaining(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.record(key, now); f != nil && now.Before(f.until) {
		return f.until.Sub(now)
	}
	return 0
}

// fail counts a failure of key and reports whether it locked key.
func (l *lockoutTable) fail(key string, now time.Time) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.record(key, now)
	if f == nil {
		f = &failures{}
		l.cur[key] = f
	}
	f.count++
	f.last = now
	if f.count < l.after {
		return false
	}
	f.count = 0
	f.until = now.Add(l.period)
	return true
}

// succeed forgets key's failures.
func (l *lockoutTable) succeed(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.cur, key)
	delete(l.prev, key)
}

// size is the number of records held (for tests of the memory bound).
func (l *lockoutTable) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}
