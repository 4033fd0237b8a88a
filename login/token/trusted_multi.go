package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// MultiVerifier is the one token verifier the proxy needs: it sends each
// token to frontdoor's own Verifier or to the trusted issuer it names.
type MultiVerifier struct {
	own       *Verifier
	ownIssuer string
	trusted   *TrustedIssuers
}

// NewMultiVerifier returns a verifier for tokens of ownIssuer (tokens.issuer),
// checked by own, and of the issuers in trusted, which may be nil.
func NewMultiVerifier(own *Verifier, ownIssuer string, trusted *TrustedIssuers) *MultiVerifier {
	return &MultiVerifier{own: own, ownIssuer: ownIssuer, trusted: trusted}
}

// Verify checks raw (the compact JWS, without "Bearer ") and returns its
// claims. The unverified iss only chooses the verifier: a token claiming
// frontdoor's own issuer is checked by the own Verifier alone, whatever
// trusted holds, and every verifier checks iss again. Every error is a
// *VerifyError; none contains the token.
func (m *MultiVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxTokenLen {
		return nil, &VerifyError{Reason: ReasonMalformed, Err: errTooLong}
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, err
	}
	if iss == m.ownIssuer {
		return m.own.Verify(ctx, raw)
	}
	if m.trusted == nil {
		return nil, &VerifyError{Reason: ReasonClaims, Err: ErrUntrustedIssuer}
	}
	// An issuer that is not trusted is refused by Verify itself.
	return m.trusted.Verify(ctx, raw, iss)
}

var errPayload = errors.New("payload is not base64url JSON")

// unverifiedIssuer reads the iss claim of raw without checking anything
// else. encoding/json matches "iss" case-insensitively here while the
// verifiers do not; such a token is refused by the verifier it reaches.
func unverifiedIssuer(raw string) (string, error) {
	_, rest, ok := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return "", &VerifyError{Reason: ReasonMalformed, Err: errors.New("token is not three dot-separated segments")}
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", &VerifyError{Reason: ReasonMalformed, Err: errPayload}
	}
	var claims struct {
		Iss any `json:"iss"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		return "", &VerifyError{Reason: ReasonMalformed, Err: errPayload}
	}
	iss, ok := claims.Iss.(string)
	if !ok {
		return "", claimErr("iss must be a string")
	}
	return iss, nil
}
