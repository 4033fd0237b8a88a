package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs access tokens with the ring's active key.
type Issuer struct {
	ring *KeyRing
	cfg  Config
	now  func() time.Time
}

// NewIssuer returns an Issuer that signs with ring's active key and stamps
// cfg's issuer and audience. now is the clock; nil means time.Now.
func NewIssuer(ring *KeyRing, cfg Config, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{ring: ring, cfg: cfg, now: now}
}

// MintRequest describes the access token to mint.
type MintRequest struct {
	Subject string   // the user id; required
	Roles   []string // the roles claim; nil is minted as []
	AMR     []string // authentication methods ("wechat", "pwd"); omitted if empty
	// Version is the user's token version (the "ver" claim), omitted when 0.
	Version int64
	// TTL is the token's lifetime; 0 means access_ttl. It may not exceed
	// access_ttl: a retired key leaves the JWKS access_ttl + Leeway after it
	// stopped signing, so a longer-lived token would stop verifying early.
	TTL time.Duration
	// Extra claims are added last and may add or override any claim, for
	// operators and tests (`frontdoor token mint -claims`). Minted reflects
	// overridden jti, iat and exp when they are a string, number and number.
	Extra map[string]any
}

// Minted is a signed access token.
type Minted struct {
	Token     string // the compact JWS; never log it
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Mint signs an access token for req. The header is
// {"alg":"RS256","kid":<thumbprint>,"typ":"JWT"}; the claims are iss, aud (a
// single string), sub, exp, iat, nbf (= iat), jti (128 random bits,
// base64url), roles and, if given, amr and ver.
func (i *Issuer) Mint(ctx context.Context, req MintRequest) (Minted, error) {
	if err := ctx.Err(); err != nil {
		return Minted{}, err
	}
	if req.Subject == "" {
		return Minted{}, errors.New("mint: subject is required")
	}
	ttl := req.TTL
	switch {
	case ttl == 0:
		ttl = i.cfg.AccessTTL
	case ttl < 0:
		return Minted{}, fmt.Errorf("mint: negative ttl %v", ttl)
	case ttl > i.cfg.AccessTTL:
		return Minted{}, fmt.Errorf("mint: ttl %v exceeds tokens.access_ttl %v", ttl, i.cfg.AccessTTL)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Minted{}, fmt.Errorf("mint: jti: %w", err)
	}
	// NumericDate has whole seconds; IssuedAt and ExpiresAt say exactly
	// what the token says.
	iat := time.Unix(i.now().Unix(), 0)
	m := Minted{
		ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		IssuedAt:  iat,
		ExpiresAt: iat.Add(ttl),
	}
	roles := req.Roles
	if roles == nil {
		roles = []string{}
	}
	claims := jwt.MapClaims{
		"iss":   i.cfg.Issuer,
		"aud":   i.cfg.Audience,
		"sub":   req.Subject,
		"exp":   m.ExpiresAt.Unix(),
		"iat":   iat.Unix(),
		"nbf":   iat.Unix(),
		"jti":   m.ID,
		"roles": roles,
	}
	if len(req.AMR) > 0 {
		claims["amr"] = req.AMR
	}
	if req.Version != 0 {
		claims["ver"] = req.Version
	}
	for name, v := range req.Extra {
		claims[name] = v
	}
	if jti, ok := req.Extra["jti"].(string); ok {
		m.ID = jti
	}
	if t, ok := numericDate(req.Extra["iat"]); ok {
		m.IssuedAt = t
	}
	if t, ok := numericDate(req.Extra["exp"]); ok {
		m.ExpiresAt = t
	}

	kid, key := i.ring.Active()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		// Extra may hold a value JSON cannot encode; the error names only
		// its type.
		return Minted{}, fmt.Errorf("mint: sign: %w", err)
	}
	m.Token = signed
	return m, nil
}

// numericDate converts a claim value given in MintRequest.Extra to a time,
// if it is a number.
func numericDate(v any) (time.Time, bool) {
	var f float64
	switch n := v.(type) {
	case int:
		return time.Unix(int64(n), 0), true
	case int64:
		return time.Unix(n, 0), true
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
