package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

const (
	// trustedFetchTimeout bounds one JWKS fetch, and how long a token with an
	// unknown kid may wait for the fetch it triggers.
	trustedFetchTimeout = 10 * time.Second
	// maxJWKSBytes caps a JWKS response. Real ones are a few KiB; jwkset
	// decodes whatever it is sent.
	maxJWKSBytes = 1 << 20
)

// ErrUntrustedIssuer is matched (errors.Is) by the VerifyError for a token
// whose iss is neither frontdoor's own issuer nor a trusted one.
var ErrUntrustedIssuer = errors.New("issuer not trusted")

var (
	errTrustedClosed = errors.New("trusted issuers: closed")
	errKeysNotLoaded = errors.New("the issuer's keys have not been fetched")
	errTrustedAlg    = errors.New("alg not allowed: trusted issuers must sign with RS, PS, ES or EdDSA algorithms")
	errKeyAlg        = errors.New("alg not allowed for the key that kid selects")
	errKeyUse        = errors.New("the key that kid selects is not for signatures")
	errWeakKey       = fmt.Errorf("the key that kid selects is RSA with fewer than %d bits", MinKeyBits)
	errJWKSTooLarge  = fmt.Errorf("JWKS response larger than %d bytes", maxJWKSBytes)
)

// trustedAlgs are the algorithms accepted from trusted issuers: asymmetric
// only. HS* would let anyone sign with the issuer's public key as the HMAC
// secret, and "none" needs no key at all.
func trustedAlgs() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// TrustedOptions are the dependencies of a TrustedIssuers.
type TrustedOptions struct {
	// Client fetches the JWKS documents; nil means a client with a 10s
	// timeout. Responses over 1 MiB are refused whatever the client.
	Client *http.Client
	// Now is the clock for exp, nbf and iat; nil means time.Now.
	Now func() time.Time
	// OnRefreshError, if set, is told of every failed JWKS fetch of a
	// configured issuer, for logging. It may be called concurrently. The
	// error never contains a token.
	OnRefreshError func(issuer string, err error)
}

// TrustedIssuers verifies tokens of other issuers (a company SSO, another
// frontdoor cluster) with the keys each publishes as a JWKS. The set of
// issuers can be replaced while tokens are being verified (Set), so that
// `trusted_issuers` reloads without a restart.
//
// Each issuer's JWKS is cached, fetched again every RefreshInterval, and
// fetched early when a token names a kid that is not cached, but at most
// once per UnknownKIDInterval, so made-up kids cannot make frontdoor hammer
// the issuer. While no keys could be fetched, the issuer's tokens are
// refused: it fails closed.
type TrustedIssuers struct {
	client *http.Client
	now    func() time.Time
	onErr  func(issuer string, err error)

	// mu serialises Set and Close; Verify only loads issuers.
	mu      sync.Mutex
	closed  bool
	starts  sync.WaitGroup // goroutines creating remote key sets
	issuers atomic.Pointer[map[string]*trustedIssuer]
}

// trustedIssuer is one configured issuer. Nothing in it changes after it is
// published, except the cache inside keys.
type trustedIssuer struct {
	cfg    TrustedIssuerConfig
	parser *jwt.Parser
	keys   *remoteKeys
}

// fetchConfig is what a remote key set depends on: entries that differ in
// nothing else share it across Set calls, keeping the cached keys.
type fetchConfig struct {
	url                 string
	refresh, unknownKID time.Duration
}

func (c TrustedIssuerConfig) fetch() fetchConfig {
	return fetchConfig{url: c.JWKSURL, refresh: c.RefreshInterval, unknownKID: c.UnknownKIDInterval}
}

// remoteKeys is one issuer's JWKS client. ctx ends its refresh goroutine.
// storage and err are set once, before ready is closed.
type remoteKeys struct {
	fetch   fetchConfig
	ctx     context.Context
	cancel  context.CancelFunc
	ready   chan struct{}
	storage jwkset.Storage
	err     error
}

// NewTrustedIssuers returns an empty set of trusted issuers; Set fills it.
func NewTrustedIssuers(opts TrustedOptions) *TrustedIssuers {
	client := opts.Client
	if client == nil {
		client = &http.Client{Timeout: trustedFetchTimeout}
	}
	capped := *client
	base := capped.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	capped.Transport = cappedTransport{base: base}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &TrustedIssuers{client: &capped, now: opts.Now, onErr: opts.OnRefreshError}
	t.issuers.Store(&map[string]*trustedIssuer{})
	return t
}

// Set makes list the trusted issuers. list must have passed
// ValidateTrustedIssuers; Set itself refuses only what would make it unsafe
// (an empty issuer or audience, an unusable URL or interval, an issuer listed
// twice), in which case nothing changes.
//
// Set does not wait for the network. An issuer whose fetch settings
// (jwks_url, refresh_interval, unknown_kid_interval) are unchanged keeps its
// cached keys; new or changed ones start fetching in the background, and
// their tokens wait for that first fetch (up to the request's context) and
// are refused if it fails, until a later fetch succeeds. Removed issuers stop
// fetching. ctx carries values to the fetches; its end does not stop them
// (Close and later Sets do).
func (t *TrustedIssuers) Set(ctx context.Context, list []TrustedIssuerConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	seen := make(map[string]bool, len(list))
	for i, c := range list {
		if err := checkTrusted(c); err != nil {
			return fmt.Errorf("trusted issuer %d: %w", i, err)
		}
		if seen[c.Issuer] {
			return fmt.Errorf("trusted issuer %d: %q is listed twice", i, c.Issuer)
		}
		seen[c.Issuer] = true
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errTrustedClosed
	}
	prev := *t.issuers.Load()
	next := make(map[string]*trustedIssuer, len(list))
	kept := make(map[*remoteKeys]bool)
	for _, c := range list {
		var keys *remoteKeys
		if old := prev[c.Issuer]; old != nil && old.keys.fetch == c.fetch() {
			keys = old.keys
			kept[keys] = true
		} else {
			keys = t.start(ctx, c)
		}
		next[c.Issuer] = &trustedIssuer{cfg: c, parser: t.parser(c), keys: keys}
	}
	t.issuers.Store(&next)
	for _, old := range prev {
		if !kept[old.keys] {
			old.keys.cancel()
		}
	}
	return nil
}

// checkTrusted refuses an entry that would verify unsafely: golang-jwt skips
// the iss and aud checks when told to expect "", and a zero interval would
// remove the limit on refetches.
func checkTrusted(c TrustedIssuerConfig) error {
	switch {
	case c.Issuer == "":
		return errors.New("empty issuer")
	case c.Audience == "":
		return errors.New("empty audience")
	case c.UserIDClaim == "":
		return errors.New("empty user_id_claim")
	case c.RefreshInterval <= 0 || c.UnknownKIDInterval <= 0:
		return errors.New("refresh intervals must be positive")
	}
	if _, err := url.ParseRequestURI(c.JWKSURL); err != nil {
		return fmt.Errorf("jwks_url: %w", err)
	}
	return nil
}

func (t *TrustedIssuers) parser(c TrustedIssuerConfig) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(trustedAlgs()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
		// A numeric user id above 2^53 would be rounded as a float64 and
		// name another user.
		jwt.WithJSONNumber(),
	)
}

// start creates c's remote key set in the background: jwkset fetches the
// JWKS once before it returns, and that must not hold up a reload or the
// start of frontdoor.
func (t *TrustedIssuers) start(ctx context.Context, c TrustedIssuerConfig) *remoteKeys {
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &remoteKeys{fetch: c.fetch(), ctx: kctx, cancel: cancel, ready: make(chan struct{})}
	report := func(err error) {
		// Fetches cut short by the issuer's removal are not failures.
		if t.onErr != nil && kctx.Err() == nil {
			t.onErr(c.Issuer, err)
		}
	}
	noErrorOnFirstFetch := true
	override := keyfunc.Override{
		Client:                    t.client,
		HTTPTimeout:               trustedFetchTimeout,
		NoErrorReturnFirstHTTPReq: &noErrorOnFirstFetch,
		// This bounds both the wait for the limiter and the fetch it then
		// makes. The limiter is only waited for when its next token is due
		// within this time; other tokens with unknown kids are refused at
		// once.
		RateLimitWaitMax: trustedFetchTimeout,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(_ context.Context, err error) { report(err) }
		},
		RefreshInterval:   c.RefreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(c.UnknownKIDInterval), 1),
	}
	t.starts.Go(func() {
		defer close(k.ready)
		kf, err := keyfunc.NewDefaultOverrideCtx(kctx, []string{c.JWKSURL}, override)
		if err != nil {
			k.err = err
			report(err)
			return
		}
		k.storage = kf.Storage()
	})
	return k
}

// wait returns the key set once its first fetch has been attempted.
func (k *remoteKeys) wait(ctx context.Context) (jwkset.Storage, error) {
	select {
	case <-k.ready:
		if k.err != nil {
			return nil, errKeysNotLoaded
		}
		return k.storage, nil
	case <-ctx.Done():
		return nil, errKeysNotLoaded
	}
}

// Issuers returns the trusted issuers, sorted.
func (t *TrustedIssuers) Issuers() []string {
	m := *t.issuers.Load()
	out := make([]string, 0, len(m))
	for iss := range m {
		out = append(out, iss)
	}
	slices.Sort(out)
	return out
}

// Close stops every issuer's fetching; afterwards no issuer is trusted and
// Set fails.
func (t *TrustedIssuers) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	prev := *t.issuers.Load()
	t.issuers.Store(&map[string]*trustedIssuer{})
	for _, ti := range prev {
		ti.keys.cancel()
	}
	t.starts.Wait()
}

// Verify checks raw (the compact JWS, without "Bearer "), a token claiming
// to be from the trusted issuer iss, and returns its claims. Every error is a
// *VerifyError; none contains the token.
//
// The kid must select one of the issuer's keys, and alg must be an
// asymmetric algorithm that fits that key (and the key's own alg, if the
// JWK names one). Header parameters that point at other keys (jku, x5u, jwk,
// x5c) are ignored, never fetched. exp is required; iss and aud must match
// the issuer's configuration. The user id is read from user_id_claim (a
// non-empty string, or an integer written as a decimal string) and the roles
// from roles_claim (an array of strings, none when absent). Version is
// always 0: per-user cutoffs apply to frontdoor's own tokens only.
func (t *TrustedIssuers) Verify(ctx context.Context, raw string, iss string) (*Claims, error) {
	if len(raw) > MaxTokenLen {
		return nil, &VerifyError{Reason: ReasonMalformed, Err: errTooLong}
	}
	ti := (*t.issuers.Load())[iss]
	if ti == nil {
		return nil, &VerifyError{Reason: ReasonClaims, Err: ErrUntrustedIssuer}
	}
	mc := jwt.MapClaims{}
	tok, err := ti.parser.ParseWithClaims(raw, mc, func(tok *jwt.Token) (any, error) {
		return ti.keys.key(ctx, tok)
	})
	if err != nil {
		return nil, classifyTrusted(tok, err)
	}
	return ti.claims(mc)
}

// key returns the public key that tok's kid selects, if it fits tok's alg.
// keyfunc's own Keyfunc is not used because its errors do not tell a
// missing key from an alg mismatch.
func (k *remoteKeys) key(ctx context.Context, tok *jwt.Token) (any, error) {
	if _, ok := tok.Header["crit"]; ok {
		return nil, errCrit
	}
	// Without a kid, keyfunc would try every key of the issuer.
	kid, ok := tok.Header["kid"]
	switch {
	case !ok || kid == "":
		return nil, errNoKID
	case !isString(kid):
		return nil, errBadKID
	}
	storage, err := k.wait(ctx)
	if err != nil {
		return nil, err
	}
	// A refresh that an unknown kid triggers runs to its end (bounded by
	// RateLimitWaitMax) even if the request goes away: otherwise clients
	// that hang up at once could spend the issuer's refresh allowance on
	// fetches that never complete.
	jwk, err := storage.KeyRead(context.WithoutCancel(ctx), kid.(string))
	if err != nil {
		// Not found, even after the refresh it may have triggered, or a
		// refresh was not allowed yet. The error names the kid the client
		// chose, so it is not passed on.
		return nil, errUnknownKID
	}
	alg := tok.Method.Alg()
	meta := jwk.Marshal()
	if meta.ALG != "" && meta.ALG.String() != alg {
		return nil, errKeyAlg
	}
	if meta.USE != "" && meta.USE != jwkset.UseSig {
		return nil, errKeyUse
	}
	key := jwk.Key()
	// A JWKS that (wrongly) publishes a private key still only verifies.
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if err := keyFitsAlg(key, alg); err != nil {
		return nil, err
	}
	return key, nil
}

// keyFitsAlg checks that key is of the type and size that alg signs with,
// so that, for a JWK without alg, a token cannot pick an algorithm the key
// was not made for.
func keyFitsAlg(key any, alg string) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return errKeyAlg
		}
		if k.N.BitLen() < MinKeyBits {
			return errWeakKey
		}
		return nil
	case *ecdsa.PublicKey:
		var curve string
		switch alg {
		case "ES256":
			curve = "P-256"
		case "ES384":
			curve = "P-384"
		case "ES512":
			curve = "P-521"
		}
		if curve == "" || k.Curve == nil || k.Curve.Params().Name != curve {
			return errKeyAlg
		}
		return nil
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return errKeyAlg
		}
		return nil
	}
	return errKeyAlg
}

// classifyTrusted maps the errors of a trusted issuer's verification to a
// Reason, as classify does for frontdoor's own tokens.
func classifyTrusted(tok *jwt.Token, err error) *VerifyError {
	for _, e := range []error{errUnknownKID, errKeysNotLoaded} {
		if errors.Is(err, e) {
			return &VerifyError{Reason: ReasonUnknownKey, Err: e}
		}
	}
	for _, e := range []error{errKeyAlg, errKeyUse, errWeakKey} {
		if errors.Is(err, e) {
			return &VerifyError{Reason: ReasonAlgorithm, Err: e}
		}
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		// Raised before the keyfunc for an alg outside trustedAlgs.
		if tok != nil && tok.Method != nil && !slices.Contains(trustedAlgs(), tok.Method.Alg()) {
			return &VerifyError{Reason: ReasonAlgorithm, Err: errTrustedAlg}
		}
		return &VerifyError{Reason: ReasonSignature, Err: jwt.ErrTokenSignatureInvalid}
	}
	return classify(tok, err)
}

// claims extracts what frontdoor needs from a verified token of ti.
func (ti *trustedIssuer) claims(mc jwt.MapClaims) (*Claims, error) {
	c := &Claims{Issuer: ti.cfg.Issuer}
	v, ok := lookupClaim(mc, ti.cfg.UserIDClaim)
	if !ok {
		return nil, claimErr("user id claim " + ti.cfg.UserIDClaim + " is missing")
	}
	if c.Subject, ok = userIDOf(v); !ok {
		return nil, claimErr("user id claim " + ti.cfg.UserIDClaim + " must be a non-empty string or an integer")
	}
	if ti.cfg.RolesClaim != "" {
		if v, ok := lookupClaim(mc, ti.cfg.RolesClaim); ok {
			var err error
			if c.Roles, err = stringsOf(v, ti.cfg.RolesClaim); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if c.AMR, err = stringArray(mc, "amr"); err != nil {
		return nil, err
	}
	if v, ok := mc["jti"]; ok {
		if c.ID, ok = v.(string); !ok {
			return nil, claimErr("jti must be a string")
		}
	}
	// Both were type-checked by the parser.
	if exp, _ := mc.GetExpirationTime(); exp != nil {
		c.ExpiresAt = exp.Time
	}
	if iat, _ := mc.GetIssuedAt(); iat != nil {
		c.IssuedAt = iat.Time
	}
	return c, nil
}

// lookupClaim resolves a dot path in the claims. A claim name may itself
// contain dots ("https://example.com/roles"), so at each level the longest
// name present is tried first.
func lookupClaim(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if v, ok := lookupClaim(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// userIDOf accepts a non-empty string or an integer, which it writes in
// decimal as the user id.
func userIDOf(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, v != ""
	case json.Number:
		// The decoder only produces valid JSON numbers: without a
		// fraction or an exponent it is an integer in canonical form.
		s := string(v)
		if strings.ContainsAny(s, ".eE") {
			return "", false
		}
		if s == "-0" {
			s = "0"
		}
		return s, true
	}
	return "", false
}

// stringsOf returns v, the claim at path, as an array of strings.
func stringsOf(v any, path string) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, claimErr(path + " must be an array of strings")
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		if out[i], ok = e.(string); !ok {
			return nil, claimErr(path + " must be an array of strings")
		}
	}
	return out, nil
}

// cappedTransport refuses JWKS responses over maxJWKSBytes.
type cappedTransport struct{ base http.RoundTripper }

func (c cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: maxJWKSBytes}
	return resp, nil
}

// cappedBody delivers at most maxJWKSBytes, then fails. The bytes beyond
// are withheld, not returned with the error: encoding/json would otherwise
// still decode a value that they complete.
type cappedBody struct {
	rc   io.ReadCloser
	left int64 // bytes still allowed; -1 once the body went beyond
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errJWKSTooLarge
	}
	// One byte more than allowed tells whether the body goes on.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), -1
		return n, errJWKSTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
