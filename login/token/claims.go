package token

import (
	"errors"
	"fmt"
	"time"
)

// Claims is what frontdoor trusts about a verified access token.
type Claims struct {
	Issuer  string
	Subject string // the user id, a non-empty decimal string for our own tokens
	Roles   []string
	AMR     []string
	ID      string // jti
	// Version is the user's token version when the token was issued (the
	// "ver" claim, 0 when absent). A user's version goes up when they are
	// disabled or their roles change, which revokes every older token.
	Version   int64
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Reasons a token is refused. They label the auth-failure metric, so keep
// them few and stable.
const (
	ReasonMalformed   = "malformed" // not a JWS, bad base64/JSON, bad header
	ReasonAlgorithm   = "algorithm" // alg not allowed for the selected key
	ReasonUnknownKey  = "unknown_kid"
	ReasonSignature   = "signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonClaims      = "claims" // iss, aud, sub, or a claim of the wrong type
	ReasonRevoked     = "revoked"
)

// ErrInvalid is matched (errors.Is) by every VerifyError.
var ErrInvalid = errors.New("invalid token")

// VerifyError says why a token was refused. Its message is safe to log and to
// return to the client: it never contains the token.
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	if e.Err == nil {
		return "invalid token: " + e.Reason
	}
	return fmt.Sprintf("invalid token: %s: %v", e.Reason, e.Err)
}

func (e *VerifyError) Unwrap() []error { return []error{ErrInvalid, e.Err} }
