// Package login is frontdoor's own HTTP API under /auth/ and /.well-known/:
// logins, the session lifecycle and the key discovery documents. Its
// sub-packages hold the parts: WeChat client and crypto (wechat), signing
// keys and tokens (token), and storage (store).
package login

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"frontdoor/internal/apierror"
	"frontdoor/internal/bearer"
	"frontdoor/internal/clientip"
	"frontdoor/login/session"
	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/login/wechat"
	"frontdoor/policy"
)

// maxBody bounds every JSON request body of the API.
const maxBody = 64 << 10

// TokenVerifier checks access tokens (token.Verifier implements it).
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*token.Claims, error)
}

// APIOptions are the dependencies of the API.
type APIOptions struct {
	Store  store.Store
	Keys   *token.KeyRing
	Issuer *token.Issuer
	// Verifier checks access tokens including revocation (session.Verifier).
	Verifier TokenVerifier
	// Revocations is told about logouts at once, so this replica refuses a
	// logged-out token on the very next request.
	Revocations *session.Revocations
	// WeChat exchanges login codes; nil disables WeChat login.
	WeChat *wechat.Client
	Sealer *Sealer
	// ClientIP resolves the client address for per-IP limits.
	ClientIP *clientip.Resolver
	Metrics  *Metrics
	Logger   *zap.Logger
	Now      func() time.Time
	Tokens   token.Config
	// Config and Policy are the reloadable parts; see Reload.
	Config Config
	Policy *policy.Policy
}

// API serves the /auth/ and /.well-known/ endpoints.
type API struct {
	store    store.Store
	keys     *token.KeyRing
	issuer   *token.Issuer
	verifier TokenVerifier
	revoked  *session.Revocations
	wechat   *wechat.Client
	sealer   *Sealer
	clientIP *clientip.Resolver
	metrics  *Metrics
	log      *zap.Logger
	now      func() time.Time
	tokens   token.Config
	settings atomic.Pointer[settings]
	mux      *http.ServeMux
	// hashSlots bounds concurrent argon2id work (see newHashSlots).
	hashSlots chan struct{}
}

// settings is the reloadable configuration, swapped as a whole.
type settings struct {
	cfg       Config
	policy    *policy.Policy
	ipLimiter *keyedLimiter
	// Password login state, kept across reloads by reloadPassword.
	userLimiter *keyedLimiter
	lockouts    *lockoutTable
	dummyHash   string
}

// limiterCapacity bounds the keys each rate limiter remembers.
const limiterCapacity = 100_000

// NewAPI builds the handler.
func NewAPI(opts APIOptions) *API {
	a := &API{
		store: opts.Store, keys: opts.Keys, issuer: opts.Issuer, verifier: opts.Verifier, revoked: opts.Revocations,
		wechat: opts.WeChat, sealer: opts.Sealer, clientIP: opts.ClientIP, metrics: opts.Metrics,
		log: opts.Logger, now: opts.Now, tokens: opts.Tokens, mux: http.NewServeMux(),
		hashSlots: newHashSlots(),
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.clientIP == nil {
		a.clientIP = &clientip.Resolver{}
	}
	if a.sealer == nil {
		a.sealer = &Sealer{}
	}
	a.Reload(opts.Config, opts.Policy)
	a.mux.HandleFunc("GET /.well-known/jwks.json", a.jwks)
	a.mux.HandleFunc("GET /.well-known/openid-configuration", a.discovery)
	a.mux.HandleFunc("POST /auth/wx/login", a.wxLogin)
	a.mux.HandleFunc("POST /auth/login", a.passwordLogin)
	a.mux.HandleFunc("POST /auth/refresh", a.refresh)
	a.mux.HandleFunc("POST /auth/logout", a.logout)
	a.mux.HandleFunc("GET /auth/me", a.getMe)
	a.mux.HandleFunc("PATCH /auth/me", a.patchMe)
	return a
}

// Reload installs a new login section and policy. Rate-limit state is kept
// unless the limit itself changed.
func (a *API) Reload(cfg Config, pol *policy.Policy) {
	next := &settings{cfg: cfg, policy: pol}
	if old := a.settings.Load(); old != nil && old.cfg.RateLimit.PerIPPerMinute == cfg.RateLimit.PerIPPerMinute {
		next.ipLimiter = old.ipLimiter
	} else {
		next.ipLimiter = newKeyedLimiter(cfg.RateLimit.PerIPPerMinute, limiterCapacity)
	}
	reloadPassword(next, a.settings.Load())
	a.settings.Store(next)
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		// ServeMux would answer in plain text; keep the JSON contract.
		if allowed := a.allowedMethods(r); allowed != "" {
			w.Header().Set("Allow", allowed)
			apierror.Write(w, http.StatusMethodNotAllowed, apierror.MethodNotAllowed, "method not allowed on this endpoint")
			return
		}
		apierror.Write(w, http.StatusNotFound, apierror.NotFound, "no such endpoint")
		return
	}
	h.ServeHTTP(w, r)
}

// allowedMethods probes the mux for the methods registered on r's path.
func (a *API) allowedMethods(r *http.Request) string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := a.mux.Handler(probe); p != "" {
			allowed = append(allowed, m)
		}
	}
	return strings.Join(allowed, ", ")
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	// Short enough that a rotation by another replica or the CLI reaches
	// JWKS consumers quickly; retired keys stay published for a whole token
	// lifetime, so a stale cache never rejects a valid token.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(a.keys.JWKS())
}

func (a *API) discovery(w http.ResponseWriter, r *http.Request) {
	iss := strings.TrimSuffix(a.tokens.Issuer, "/")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + "/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"subject_types_supported":               []string{"public"},
		"claims_supported":                      []string{"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "roles", "amr"},
	})
}

// tokenResponse is RFC 6749 §5.1 plus the user, as DESIGN.md specifies.
type tokenResponse struct {
	AccessToken      string   `json:"access_token"`
	TokenType        string   `json:"token_type"`
	ExpiresIn        int64    `json:"expires_in"`
	RefreshToken     string   `json:"refresh_token,omitempty"`
	RefreshExpiresIn int64    `json:"refresh_expires_in,omitempty"`
	User             userView `json:"user"`
	NewUser          bool     `json:"new_user"`
}

type userView struct {
	ID        string   `json:"id"`
	Nickname  string   `json:"nickname"`
	AvatarURL string   `json:"avatar_url"`
	Roles     []string `json:"roles"`
}

func viewOf(u store.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{ID: strconv.FormatInt(u.ID, 10), Nickname: u.Nickname, AvatarURL: u.AvatarURL, Roles: roles}
}

// issueTokens starts a session for u: a new refresh-token family and an
// access token, written as the token response.
func (a *API) issueTokens(ctx context.Context, w http.ResponseWriter, u store.User, amr string, created bool) error {
	value, rt, err := a.newSession(amr, a.now())
	if err != nil {
		return err
	}
	rt.UserID = u.ID
	if err := a.store.CreateRefreshToken(ctx, rt); err != nil {
		return err
	}
	return a.writeTokens(ctx, w, u, amr, created, value, rt)
}

// newSession makes the first refresh token of a new family for a login by
// amr, issued at now, and returns its value. The token names no user yet:
// a WeChat login learns the user in the transaction that stores the token.
func (a *API) newSession(amr string, now time.Time) (string, store.RefreshToken, error) {
	value, hash, err := session.NewRefreshToken()
	if err != nil {
		return "", store.RefreshToken{}, err
	}
	family, _, err := session.NewRefreshToken()
	if err != nil {
		return "", store.RefreshToken{}, err
	}
	return value, store.RefreshToken{
		Hash: hash, FamilyID: amr + ":" + family[:22],
		IssuedAt: now, ExpiresAt: now.Add(a.tokens.RefreshTTL),
	}, nil
}

// writeTokens mints the access token for u and writes the token response
// with the refresh token value.
func (a *API) writeTokens(ctx context.Context, w http.ResponseWriter, u store.User, amr string, created bool, refresh string, rt store.RefreshToken) error {
	m, err := a.issuer.Mint(ctx, token.MintRequest{
		Subject: strconv.FormatInt(u.ID, 10),
		Roles:   u.Roles,
		AMR:     []string{amr},
		Version: u.TokenVersion,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:      m.Token,
		TokenType:        "Bearer",
		ExpiresIn:        int64(m.ExpiresAt.Sub(m.IssuedAt).Seconds()),
		RefreshToken:     refresh,
		RefreshExpiresIn: int64(rt.ExpiresAt.Sub(a.now()).Seconds()),
		User:             viewOf(u),
		NewUser:          created,
	})
	return nil
}

// allowIP applies the per-IP login limit; false means a 429 was written.
func (a *API) allowIP(w http.ResponseWriter, r *http.Request, s *settings) bool {
	ok, wait := s.ipLimiter.allow(a.clientIP.ClientIP(r).String(), a.now())
	if ok {
		return true
	}
	a.metrics.limited("ip")
	tooMany(w, wait)
	return false
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
	apierror.Write(w, http.StatusTooManyRequests, apierror.RateLimited, "too many login attempts; retry later")
}

// requestError is a client mistake answered 400 invalid_request.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

// decodeJSON reads a JSON object body of at most maxBody bytes into v.
// strict refuses unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, strict bool) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &requestError{"Content-Type must be application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return &requestError{"request body is larger than 64 KiB"}
		case errors.As(err, &te):
			return &requestError{"field " + te.Field + " has the wrong type"}
		case errors.Is(err, io.EOF):
			return &requestError{"request body is empty"}
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return &requestError{strings.TrimPrefix(err.Error(), "json: ")}
		}
		return &requestError{"request body is not valid JSON"}
	}
	if dec.More() {
		return &requestError{"request body has data after the JSON object"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &requestError{"request body is larger than 64 KiB"}
		}
		return &requestError{"request body has data after the JSON object"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// storeFailure answers a store error: 503 when the database cannot be
// reached (logins wait for it; proxying does not need it), else 500.
func (a *API) storeFailure(w http.ResponseWriter, op string, err error) {
	a.log.Error("store error", zap.String("op", op), zap.Error(err))
	if errors.Is(err, store.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		apierror.Write(w, http.StatusServiceUnavailable, apierror.Unavailable, "the user store is unavailable; retry shortly")
		return
	}
	apierror.Write(w, http.StatusInternalServerError, apierror.ServerError, "internal error")
}

// authenticate verifies the request's bearer token for /auth/ endpoints.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (*token.Claims, bool) {
	raw, present, problem := bearer.Parse(r.Header)
	switch {
	case problem != "":
		apierror.Write(w, http.StatusUnauthorized, apierror.InvalidToken, problem)
		return nil, false
	case !present:
		apierror.Write(w, http.StatusUnauthorized, apierror.MissingToken, "this endpoint requires an access token")
		return nil, false
	}
	claims, err := a.verifier.Verify(r.Context(), raw)
	if err != nil {
		apierror.Write(w, http.StatusUnauthorized, apierror.InvalidToken, "the access token is invalid or expired")
		return nil, false
	}
	return claims, true
}
