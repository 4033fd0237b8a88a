// Package token issues and verifies frontdoor's RS256 access tokens and
// manages the RSA signing keys they are signed with.
//
// The keys live in the store so that every replica signs and verifies with
// the same set. A KeyRing holds an immutable snapshot of them (the active
// key signs; the active key and recently retired keys verify) and publishes
// it as a JWKS. An Issuer mints tokens with the active key; a Verifier checks
// them through golang-jwt and keyfunc over the ring's published keys, taking
// the algorithm from the key that the token's kid selects, never from the
// token's header alone.
package token
