package main

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// publishedKey reads the RSA public key of kid from the running JWKS, as an
// attacker would.
func publishedKey(t *testing.T, base, kid string) *rsa.PublicKey {
	t.Helper()
	_, body := do(t, http.MethodGet, base+"/.well-known/jwks.json", "", nil)
	var set struct {
		Keys []struct{ Kid, N, E string }
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("JWK %s: %v %v", kid, err1, err2)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	t.Fatalf("kid %s is not in the JWKS", kid)
	return nil
}

// hitCounter is an attacker's server named by jku/x5u: frontdoor must never
// fetch anything from it.
type hitCounter struct {
	*httptest.Server
	hits atomic.Int64
}

func newHitCounter(t *testing.T, jwks []byte) *hitCounter {
	h := &hitCounter{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(h.Close)
	return h
}

func hmacJWS(t *testing.T, alg string, secret []byte, header, claims map[string]any) string {
	t.Helper()
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		t.Fatalf("alg %s", alg)
	}
	header["alg"] = alg
	in := jwsInput(t, header, claims)
	m := hmac.New(h, secret)
	m.Write([]byte(in))
	return in + "." + b64url(m.Sum(nil))
}

// rsaJWS signs with key under one of the RSA algorithms other than RS256.
func rsaJWS(t *testing.T, alg string, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	header["alg"] = alg
	in := jwsInput(t, header, claims)
	var sig []byte
	var err error
	switch alg {
	case "RS384":
		sum := sha512.Sum384([]byte(in))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA384, sum[:])
	case "RS512":
		sum := sha512.Sum512([]byte(in))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA512, sum[:])
	case "PS256":
		sum := sha256.Sum256([]byte(in))
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], nil)
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64url(sig)
}

// selfSigned is a certificate for key, for an x5c header.
func selfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "frontdoor.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// jwtOutcome is how frontdoor must treat a request's credentials.
type jwtOutcome int

const (
	// accepted: the token is valid; the upstream gets its identity.
	accepted jwtOutcome = iota
	// refused: a token is present and invalid: 401 invalid_token on every
	// route that checks tokens, optional ones included.
	refused
	// absent: no bearer token at all: 401 missing_token where a token is
	// required, anonymous where it is optional.
	absent
)

func TestSecurityJWT(t *testing.T) {
	t.Parallel()
	// A header limit far above the 100 KB token, so that the verifier and
	// not net/http is what refuses it (TestSecurityFraming covers the 431).
	env := startSecEnv(t, secOptions{maxHeaderBytes: 256 << 10})
	pub := publishedKey(t, env.base, env.kid)
	if pub.N.Cmp(env.key.N) != 0 {
		t.Fatal("the JWKS publishes another key under our kid")
	}

	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	attackerKid := jwkThumbprint(&attacker.PublicKey)
	attackerJWK := map[string]any{
		"kty": "RSA", "kid": attackerKid, "alg": "RS256", "use": "sig",
		"n": b64url(attacker.N.Bytes()), "e": b64url(big.NewInt(int64(attacker.E)).Bytes()),
	}
	attackerSet, _ := json.Marshal(map[string]any{"keys": []any{attackerJWK}})
	evil := newHitCounter(t, attackerSet)
	attackerCert := base64.StdEncoding.EncodeToString(selfSigned(t, attacker))

	// The HMAC secrets of the classic RS256→HS256 confusion: the public
	// key as every encoding a library might feed to HMAC.
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})

	// Every token below is signed by our key unless its name says
	// otherwise; the helpers change one thing about a valid token.
	header := env.header
	claims := func() map[string]any { return env.claims("42", "author") }
	withHeader := func(mod func(h map[string]any)) string {
		h := header()
		mod(h)
		return signRS256(t, env.key, h, claims())
	}
	withClaims := func(mod func(c map[string]any)) string {
		c := claims()
		mod(c)
		return signRS256(t, env.key, header(), c)
	}
	now := time.Now().Unix()
	valid := env.token(t, "42", "author")
	other := env.token(t, "7", "subscriber")
	validParts := strings.Split(valid, ".")
	otherParts := strings.Split(other, ".")
	minted := mint(t, env.cfg, "42", "author")
	if kidOf(t, minted) != env.kid {
		t.Fatalf("token mint signs with %s, not the imported key %s", kidOf(t, minted), env.kid)
	}
	// A valid token's claims with roles raised, under its original signature.
	raised := claims()
	raised["roles"] = []string{"administrator"}
	tampered := validParts[0] + "." + strings.Split(jwsInput(t, header(), raised), ".")[1] + "." + validParts[2]

	bearer := func(tok string) []string { return []string{"Authorization: Bearer " + tok} }
	type jwtCase struct {
		name    string
		headers []string
		query   string // appended to the path
		want    jwtOutcome
		sub     string // of an accepted token
	}
	cases := []jwtCase{
		{name: "our own token", headers: bearer(valid), want: accepted, sub: "42"},
		{name: "token mint", headers: bearer(minted), want: accepted, sub: "42"},
		{name: "exp 5s ago is within the leeway", headers: bearer(withClaims(func(c map[string]any) { c["exp"] = now - 5 })), want: accepted, sub: "42"},
		{name: "aud array with ours", headers: bearer(withClaims(func(c map[string]any) { c["aud"] = []string{"someone-else", secAudience} })), want: accepted, sub: "42"},
		// Headers naming key sources are ignored, never fetched: a token
		// our key signed stays valid, one the attacker signed stays
		// invalid, and the attacker's server sees no request (checked at
		// the end).
		{name: "jku, signed by us", headers: bearer(withHeader(func(h map[string]any) { h["jku"] = evil.URL + "/jwks.json" })), want: accepted, sub: "42"},
		{name: "x5u, signed by us", headers: bearer(withHeader(func(h map[string]any) { h["x5u"] = evil.URL + "/cert.pem" })), want: accepted, sub: "42"},
		{name: "jwk of the attacker, signed by us", headers: bearer(withHeader(func(h map[string]any) { h["jwk"] = attackerJWK })), want: accepted, sub: "42"},
		{name: "x5c of the attacker, signed by us", headers: bearer(withHeader(func(h map[string]any) { h["x5c"] = []string{attackerCert} })), want: accepted, sub: "42"},

		// RFC 7235: the scheme is case-insensitive, and optional
		// whitespace around a field value is not part of it.
		{name: "lowercase bearer", headers: []string{"Authorization: bearer " + valid}, want: accepted, sub: "42"},
		{name: "uppercase BEARER", headers: []string{"Authorization: BEARER " + valid}, want: accepted, sub: "42"},
		{name: "whitespace around the value", headers: []string{"Authorization:    Bearer " + valid + "   "}, want: accepted, sub: "42"},
		{name: "two spaces after Bearer", headers: []string{"Authorization: Bearer  " + valid}, want: refused},
		{name: "tab after Bearer", headers: []string{"Authorization: Bearer\t" + valid}, want: refused},
		{name: "text after the token", headers: []string{"Authorization: Bearer " + valid + " x"}, want: refused},
		{name: "Bearer without a token", headers: []string{"Authorization: Bearer"}, want: refused},
		{name: "Bearer and spaces only", headers: []string{"Authorization: Bearer   "}, want: refused},
		{name: "two Authorization headers, both valid", headers: append(bearer(valid), bearer(valid)...), want: refused},
		{name: "two Authorization headers, valid and other", headers: append(bearer(valid), bearer(other)...), want: refused},
		{name: "Authorization valid then Basic", headers: append(bearer(valid), "Authorization: Basic dXNlcjpwYXNz"), want: refused},
		{name: "Basic scheme", headers: []string{"Authorization: Basic dXNlcjpwYXNz"}, want: absent},
		{name: "another scheme with our token", headers: []string{"Authorization: Token " + valid}, want: absent},
		{name: "empty Authorization", headers: []string{"Authorization: "}, want: absent},
		{name: "token in the query", query: "?access_token=" + valid, want: absent},
		{name: "token in a cookie", headers: []string{"Cookie: access_token=" + valid + "; Authorization=Bearer%20" + valid}, want: absent},
		{name: "token in X-Access-Token", headers: []string{"X-Access-Token: " + valid, "X-Auth-Token: " + valid}, want: absent},

		{name: "not a JWS", headers: bearer("not-a-jwt"), want: refused},
		{name: "empty signature", headers: bearer(validParts[0] + "." + validParts[1] + "."), want: refused},
		{name: "no signature part", headers: bearer(validParts[0] + "." + validParts[1]), want: refused},
		{name: "four parts", headers: bearer(valid + "." + validParts[2]), want: refused},
		{name: "another valid token's signature", headers: bearer(validParts[0] + "." + validParts[1] + "." + otherParts[2]), want: refused},
		{name: "claims changed under the signature", headers: bearer(tampered), want: refused},
		{name: "truncated signature", headers: bearer(valid[:len(valid)-4]), want: refused},
		{name: "100 KB token", headers: bearer(withClaims(func(c map[string]any) { c["pad"] = strings.Repeat("A", 100<<10) })), want: refused},

		{name: "kid missing", headers: bearer(withHeader(func(h map[string]any) { delete(h, "kid") })), want: refused},
		{name: "kid empty", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = "" })), want: refused},
		{name: "kid unknown", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = attackerKid })), want: refused},
		{name: "kid path traversal", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = "../../../../etc/passwd" })), want: refused},
		{name: "kid /dev/null", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = "/dev/null" })), want: refused},
		{name: "kid SQL", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = "' OR 1=1 --" })), want: refused},
		{name: "kid SQL union", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = "x' UNION SELECT 'secret" })), want: refused},
		{name: "kid a number", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = 1 })), want: refused},
		{name: "kid an array of ours", headers: bearer(withHeader(func(h map[string]any) { h["kid"] = []string{env.kid} })), want: refused},
		{name: "crit extension", headers: bearer(withHeader(func(h map[string]any) { h["crit"] = []string{"exp"} })), want: refused},

		{name: "alg missing", headers: bearer(withHeader(func(h map[string]any) { delete(h, "alg") })), want: refused},
		{name: "alg empty", headers: bearer(withHeader(func(h map[string]any) { h["alg"] = "" })), want: refused},
		{name: "alg null", headers: bearer(withHeader(func(h map[string]any) { h["alg"] = nil })), want: refused},
		{name: "alg array", headers: bearer(withHeader(func(h map[string]any) { h["alg"] = []string{"RS256"} })), want: refused},
		{name: "alg a number", headers: bearer(withHeader(func(h map[string]any) { h["alg"] = 256 })), want: refused},
		{name: "alg rs256 lowercase", headers: bearer(withHeader(func(h map[string]any) { h["alg"] = "rs256" })), want: refused},
		{name: "RS384 by our key", headers: bearer(rsaJWS(t, "RS384", env.key, header(), claims())), want: refused},
		{name: "RS512 by our key", headers: bearer(rsaJWS(t, "RS512", env.key, header(), claims())), want: refused},
		{name: "PS256 by our key", headers: bearer(rsaJWS(t, "PS256", env.key, header(), claims())), want: refused},
		{name: "HS256, secret = public key PEM (PKIX)", headers: bearer(hmacJWS(t, "HS256", pemPKIX, header(), claims())), want: refused},
		{name: "HS256, secret = public key PEM without newline", headers: bearer(hmacJWS(t, "HS256", []byte(strings.TrimSpace(string(pemPKIX))), header(), claims())), want: refused},
		{name: "HS256, secret = public key PEM (PKCS#1)", headers: bearer(hmacJWS(t, "HS256", pemPKCS1, header(), claims())), want: refused},
		{name: "HS256, secret = public key DER (PKIX)", headers: bearer(hmacJWS(t, "HS256", pkix, header(), claims())), want: refused},
		{name: "HS256, secret = public key DER (PKCS#1)", headers: bearer(hmacJWS(t, "HS256", pkcs1, header(), claims())), want: refused},
		{name: "HS256, secret = modulus", headers: bearer(hmacJWS(t, "HS256", pub.N.Bytes(), header(), claims())), want: refused},
		{name: "HS384, secret = public key PEM", headers: bearer(hmacJWS(t, "HS384", pemPKIX, header(), claims())), want: refused},
		{name: "HS512, secret = public key PEM", headers: bearer(hmacJWS(t, "HS512", pemPKIX, header(), claims())), want: refused},

		{name: "attacker key, our kid", headers: bearer(signRS256(t, attacker, header(), claims())), want: refused},
		{name: "attacker key in jwk, its kid", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": attackerKid, "jwk": attackerJWK}, claims())), want: refused},
		{name: "attacker key in jwk, no kid", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "jwk": attackerJWK}, claims())), want: refused},
		{name: "attacker key in jwk, our kid", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": env.kid, "jwk": attackerJWK}, claims())), want: refused},
		{name: "attacker key behind jku", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": attackerKid, "jku": evil.URL + "/jwks.json"}, claims())), want: refused},
		{name: "attacker key behind jku, our kid", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": env.kid, "jku": evil.URL + "/jwks.json"}, claims())), want: refused},
		{name: "attacker certificate in x5c", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "x5c": []string{attackerCert}}, claims())), want: refused},
		{name: "attacker certificate behind x5u", headers: bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": attackerKid, "x5u": evil.URL + "/cert.pem"}, claims())), want: refused},

		{name: "expired an hour ago", headers: bearer(withClaims(func(c map[string]any) { c["exp"] = now - 3600 })), want: refused},
		{name: "expired beyond the leeway", headers: bearer(withClaims(func(c map[string]any) { c["exp"] = now - 120 })), want: refused},
		{name: "nbf in an hour", headers: bearer(withClaims(func(c map[string]any) { c["nbf"] = now + 3600 })), want: refused},
		{name: "iat in an hour", headers: bearer(withClaims(func(c map[string]any) { c["iat"] = now + 3600 })), want: refused},
		{name: "exp missing", headers: bearer(withClaims(func(c map[string]any) { delete(c, "exp") })), want: refused},
		{name: "exp a string", headers: bearer(withClaims(func(c map[string]any) { c["exp"] = "9999999999" })), want: refused},
		{name: "exp null", headers: bearer(withClaims(func(c map[string]any) { c["exp"] = nil })), want: refused},
		{name: "exp a boolean", headers: bearer(withClaims(func(c map[string]any) { c["exp"] = true })), want: refused},
		{name: "nbf a string", headers: bearer(withClaims(func(c map[string]any) { c["nbf"] = "0" })), want: refused},
		{name: "iat a string", headers: bearer(withClaims(func(c map[string]any) { c["iat"] = "0" })), want: refused},
		{name: "wrong iss", headers: bearer(withClaims(func(c map[string]any) { c["iss"] = "http://evil.test" })), want: refused},
		{name: "iss with a trailing slash", headers: bearer(withClaims(func(c map[string]any) { c["iss"] = secIssuer + "/" })), want: refused},
		{name: "iss missing", headers: bearer(withClaims(func(c map[string]any) { delete(c, "iss") })), want: refused},
		{name: "iss an array", headers: bearer(withClaims(func(c map[string]any) { c["iss"] = []string{secIssuer} })), want: refused},
		{name: "wrong aud", headers: bearer(withClaims(func(c map[string]any) { c["aud"] = "someone-else" })), want: refused},
		{name: "aud in another case", headers: bearer(withClaims(func(c map[string]any) { c["aud"] = strings.ToUpper(secAudience) })), want: refused},
		{name: "aud empty", headers: bearer(withClaims(func(c map[string]any) { c["aud"] = "" })), want: refused},
		{name: "aud missing", headers: bearer(withClaims(func(c map[string]any) { delete(c, "aud") })), want: refused},
		{name: "aud array without ours", headers: bearer(withClaims(func(c map[string]any) { c["aud"] = []string{"someone-else", "miniprogram2"} })), want: refused},
		{name: "aud empty array", headers: bearer(withClaims(func(c map[string]any) { c["aud"] = []string{} })), want: refused},
		{name: "sub missing", headers: bearer(withClaims(func(c map[string]any) { delete(c, "sub") })), want: refused},
		{name: "sub empty", headers: bearer(withClaims(func(c map[string]any) { c["sub"] = "" })), want: refused},
		{name: "sub a number", headers: bearer(withClaims(func(c map[string]any) { c["sub"] = 42 })), want: refused},
		{name: "roles a string", headers: bearer(withClaims(func(c map[string]any) { c["roles"] = "administrator" })), want: refused},
		{name: "roles of numbers", headers: bearer(withClaims(func(c map[string]any) { c["roles"] = []int{1} })), want: refused},
		{name: "jti a number", headers: bearer(withClaims(func(c map[string]any) { c["jti"] = 7 })), want: refused},
	}
	for _, spelling := range []string{"none", "None", "NONE", "nOnE"} {
		unsigned := func(h map[string]any) string {
			h["alg"] = spelling
			return jwsInput(t, h, claims())
		}
		cases = append(cases,
			jwtCase{name: "alg " + spelling + ", empty signature", headers: bearer(unsigned(header()) + "."), want: refused},
			jwtCase{name: "alg " + spelling + ", a real signature", headers: bearer(unsigned(header()) + "." + validParts[2]), want: refused},
			jwtCase{name: "alg " + spelling + ", no kid", headers: bearer(unsigned(map[string]any{"typ": "JWT"}) + "."), want: refused},
		)
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, route := range []struct {
				path     string
				required bool
			}{
				{"/api/private/jwt-case", true},
				{"/api/articles/jwt-case", false},
			} {
				path := route.path + "-" + strconv.Itoa(i) + c.query
				n := env.up.count()
				resp, body := env.roundTrip(t, rawRequest(http.MethodGet, path, c.headers...))
				switch {
				case c.want == accepted || c.want == absent && !route.required:
					if resp.StatusCode != http.StatusOK {
						t.Errorf("GET %s: %d %s, want 200", route.path, resp.StatusCode, body)
						continue
					}
					got := env.up.only(t, n)
					wantID := map[string][]string{}
					if c.want == accepted {
						wantID = map[string][]string{"X-User-Id": {c.sub}, "X-User-Roles": {"author"}}
					}
					if id := identityOf(got.Header); !sameHeaders(id, wantID) {
						t.Errorf("GET %s: the upstream saw identity %v, want %v", route.path, id, wantID)
					}
					if got.Header.Get("Authorization") != "" {
						t.Errorf("GET %s: Authorization reached the upstream", route.path)
					}
				case c.want == absent:
					if problem := apiError(resp, body, http.StatusUnauthorized, "missing_token"); problem != "" {
						t.Errorf("GET %s: %s", route.path, problem)
					}
					env.up.none(t, n)
				default:
					if problem := apiError(resp, body, http.StatusUnauthorized, "invalid_token"); problem != "" {
						t.Errorf("GET %s: %s", route.path, problem)
					}
					env.up.none(t, n)
				}
			}
		})
	}

	// frontdoor's own API reads tokens with the same parser and verifier.
	t.Run("GET /auth/me refuses the same tokens", func(t *testing.T) {
		for _, c := range cases {
			if c.want != refused {
				continue
			}
			resp, body := env.roundTrip(t, rawRequest(http.MethodGet, "/auth/me", c.headers...))
			if problem := apiError(resp, body, http.StatusUnauthorized, "invalid_token"); problem != "" {
				t.Errorf("%s: %s", c.name, problem)
			}
		}
	})

	t.Run("a token in a form body is ignored", func(t *testing.T) {
		form := "access_token=" + valid
		n := env.up.count()
		resp, body := env.roundTrip(t, rawRequest(http.MethodPost, "/api/private/form", "Content-Type: application/x-www-form-urlencoded", "Content-Length: "+strconv.Itoa(len(form)))+form)
		if problem := apiError(resp, body, http.StatusUnauthorized, "missing_token"); problem != "" {
			t.Error(problem)
		}
		env.up.none(t, n)
	})

	t.Run("no outbound request for jku, x5u, jwk or x5c", func(t *testing.T) {
		if n := evil.hits.Load(); n != 0 {
			t.Errorf("frontdoor fetched the attacker's URL %d times", n)
		}
	})

	t.Run("nothing attacker-chosen is echoed or logged", func(t *testing.T) {
		logs := env.fd.settledLogs(t)
		for _, s := range []string{validParts[2], "etc/passwd", "OR 1=1", "UNION SELECT", attackerKid} {
			if strings.Contains(logs, s) {
				t.Errorf("the log contains %q", s)
			}
		}
	})
}

// sameHeaders compares header maps, treating nil and empty alike.
func sameHeaders(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || strings.Join(v, "\x00") != strings.Join(w, "\x00") {
			return false
		}
	}
	return true
}
