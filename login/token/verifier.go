package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen is the longest token Verify parses. Ours are well under 2 KiB;
// anything near this is an attack or a mistake, not worth the CPU.
const MaxTokenLen = 16 << 10

// signingAlg is the only algorithm frontdoor's keys sign with.
const signingAlg = "RS256"

var (
	errTooLong    = fmt.Errorf("token longer than %d bytes", MaxTokenLen)
	errNoKID      = errors.New("no kid in the header")
	errBadKID     = errors.New("kid in the header is not a string")
	errUnknownKID = errors.New("no published key has this kid")
	errAlg        = errors.New("alg not allowed: the selected key signs only " + signingAlg)
	errCrit       = errors.New(`header has "crit": no extension is understood`)
)

// Verifier checks access tokens issued by this frontdoor, with the keys that
// the ring currently publishes.
type Verifier struct {
	ring   *KeyRing
	parser *jwt.Parser

	// keys mirrors the ring's published keys for keyfunc. synced is the
	// ring version it holds; mu serialises replacing it.
	keys   *jwkset.MemoryJWKSet
	kf     keyfunc.Keyfunc
	synced atomic.Uint64
	mu     sync.Mutex

	now func() time.Time
	// refreshMu serialises re-reading the keys for an unknown kid, and
	// lastRefresh (unix nanoseconds) spaces those reads out.
	refreshMu   sync.Mutex
	lastRefresh atomic.Int64
}

// UnknownKIDRefreshInterval is the least time between two store reads
// prompted by tokens whose kid no published key has.
const UnknownKIDRefreshInterval = time.Second

// NewVerifier returns a Verifier for tokens with cfg's issuer and audience,
// checked against ring's published keys. now is the clock; nil means
// time.Now.
func NewVerifier(ring *KeyRing, cfg Config, now func() time.Time) (*Verifier, error) {
	// golang-jwt skips the iss and aud checks when told to expect "", so an
	// unvalidated config could silently accept any issuer.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	keys := jwkset.NewMemoryStorage()
	// The context only bounds storage reads, which for memory storage never
	// block; Verify passes its own per call.
	kf, err := keyfunc.New(keyfunc.Options{Storage: keys, Ctx: context.Background()})
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	v := &Verifier{
		ring: ring,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{signingAlg}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(Leeway),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(now),
		),
		keys: keys,
		kf:   kf,
		now:  now,
	}
	if err := v.sync(context.Background()); err != nil {
		return nil, err
	}
	return v, nil
}

// sync makes the keyfunc's key set match the ring's current snapshot.
func (v *Verifier) sync(ctx context.Context) error {
	s := v.ring.snap.Load()
	if v.synced.Load() >= s.version {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.synced.Load() >= s.version {
		return nil
	}
	// The storage owns what it is given; the snapshot must stay immutable.
	if err := v.keys.KeyReplaceAll(ctx, append([]jwkset.JWK(nil), s.jwkSet...)); err != nil {
		return fmt.Errorf("token verifier: load keys: %w", err)
	}
	v.synced.Store(s.version)
	return nil
}

// Verify checks raw (the compact JWS, without "Bearer ") and returns its
// claims. Every error is a *VerifyError; none contains the token.
//
// A kid that no published key has makes it re-read the keys from the store
// once, at most every UnknownKIDRefreshInterval: another replica may just
// have rotated, and its tokens should not wait for the next periodic
// refresh to verify here.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, err := v.verify(ctx, raw)
	var ve *VerifyError
	if err != nil && errors.As(err, &ve) && ve.Reason == ReasonUnknownKey && v.refreshForUnknownKID(ctx) {
		return v.verify(ctx, raw)
	}
	return c, err
}

// refreshForUnknownKID re-reads the ring unless that was done within the
// interval, and reports whether the published keys changed meanwhile.
func (v *Verifier) refreshForUnknownKID(ctx context.Context) bool {
	before := v.ring.Version()
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	if v.ring.Version() != before {
		return true // another caller's refresh brought new keys
	}
	now := v.now().UnixNano()
	if now-v.lastRefresh.Load() < int64(UnknownKIDRefreshInterval) {
		return false
	}
	v.lastRefresh.Store(now)
	// Bounded, because the store may be down and this is a request's time.
	rctx, cancel := context.WithTimeout(ctx, UnknownKIDRefreshInterval)
	defer cancel()
	if err := v.ring.Refresh(rctx); err != nil {
		return false
	}
	return v.ring.Version() != before
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxTokenLen {
		return nil, &VerifyError{Reason: ReasonMalformed, Err: errTooLong}
	}
	if err := v.sync(ctx); err != nil {
		return nil, &VerifyError{Reason: ReasonUnknownKey, Err: err}
	}
	lookup := v.kf.KeyfuncCtx(ctx)
	mc := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit
		}
		// keyfunc would try every key for a token without kid; ours always
		// carry one, so its absence is refused outright.
		switch kid, ok := t.Header["kid"]; {
		case !ok || kid == "":
			return nil, errNoKID
		case !isString(kid):
			return nil, errBadKID
		}
		return lookup(t)
	})
	if err != nil {
		return nil, classify(tok, err)
	}
	return claimsOf(mc)
}

func isString(v any) bool { _, ok := v.(string); return ok }

// classify maps the errors of golang-jwt and keyfunc to a Reason. Errors
// that echo attacker-chosen header values (kid, alg) are replaced by fixed
// ones, so that a VerifyError is short and safe to log.
func classify(tok *jwt.Token, err error) *VerifyError {
	switch {
	case errors.Is(err, errNoKID):
		return &VerifyError{Reason: ReasonUnknownKey, Err: errNoKID}
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return &VerifyError{Reason: ReasonUnknownKey, Err: errUnknownKID}
	case errors.Is(err, errBadKID):
		return &VerifyError{Reason: ReasonMalformed, Err: errBadKID}
	case errors.Is(err, errCrit):
		return &VerifyError{Reason: ReasonMalformed, Err: errCrit}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &VerifyError{Reason: ReasonMalformed, Err: err}
	case errors.Is(err, keyfunc.ErrKeyfunc):
		// What remains of keyfunc's refusals is an alg that differs from
		// the JWK's.
		return &VerifyError{Reason: ReasonAlgorithm, Err: errAlg}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && tok.Method.Alg() != signingAlg {
			return &VerifyError{Reason: ReasonAlgorithm, Err: errAlg}
		}
		return &VerifyError{Reason: ReasonSignature, Err: jwt.ErrTokenSignatureInvalid}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// Raised before the keyfunc only when alg is missing, not a string
		// or names no algorithm golang-jwt knows.
		if tok != nil && isString(tok.Header["alg"]) && tok.Header["alg"] != "" {
			return &VerifyError{Reason: ReasonAlgorithm, Err: errAlg}
		}
		return &VerifyError{Reason: ReasonMalformed, Err: errors.New("header has no alg")}
	case errors.Is(err, jwt.ErrInvalidType),
		errors.Is(err, jwt.ErrTokenRequiredClaimMissing),
		errors.Is(err, jwt.ErrTokenInvalidIssuer),
		errors.Is(err, jwt.ErrTokenInvalidAudience):
		// Checked before time: a token with a wrong claim is refused as
		// such even when it has also expired.
		return &VerifyError{Reason: ReasonClaims, Err: err}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &VerifyError{Reason: ReasonExpired, Err: jwt.ErrTokenExpired}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &VerifyError{Reason: ReasonNotYetValid, Err: err}
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return &VerifyError{Reason: ReasonClaims, Err: err}
	}
	return &VerifyError{Reason: ReasonMalformed, Err: err}
}

// claimsOf extracts the claims golang-jwt does not check itself, with the
// types frontdoor relies on.
func claimsOf(mc jwt.MapClaims) (*Claims, error) {
	sub, ok := mc["sub"].(string)
	if !ok || sub == "" {
		return nil, claimErr("sub must be a non-empty string")
	}
	c := &Claims{Subject: sub}
	c.Issuer, _ = mc["iss"].(string) // checked by the parser
	var err error
	if c.Roles, err = stringArray(mc, "roles"); err != nil {
		return nil, err
	}
	if c.AMR, err = stringArray(mc, "amr"); err != nil {
		return nil, err
	}
	if v, ok := mc["jti"]; ok {
		if c.ID, ok = v.(string); !ok {
			return nil, claimErr("jti must be a string")
		}
	}
	if v, ok := mc["ver"]; ok {
		f, isNum := v.(float64)
		if !isNum || f < 0 || f != float64(int64(f)) || f > 1<<53 {
			return nil, claimErr("ver must be a non-negative integer")
		}
		c.Version = int64(f)
	}
	// exp is required and iat optional; both were type-checked by the
	// parser.
	if exp, _ := mc.GetExpirationTime(); exp != nil {
		c.ExpiresAt = exp.Time
	}
	if iat, _ := mc.GetIssuedAt(); iat != nil {
		c.IssuedAt = iat.Time
	}
	return c, nil
}

// stringArray returns the claim name, which if present must be an array of
// strings.
func stringArray(mc jwt.MapClaims, name string) ([]string, error) {
	v, ok := mc[name]
	if !ok {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, claimErr(name + " must be an array of strings")
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		if out[i], ok = e.(string); !ok {
			return nil, claimErr(name + " must be an array of strings")
		}
	}
	return out, nil
}

func claimErr(msg string) *VerifyError {
	return &VerifyError{Reason: ReasonClaims, Err: errors.New(msg)}
}
