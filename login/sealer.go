package login

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealed session keys start with a version byte, so the store can hold
// both forms and a deployment can turn encryption on later.
const (
	sealedPlain byte = 0x00 // FRONTDOOR_SECRET_KEY unset: stored as is
	sealedGCM   byte = 0x01 // AES-256-GCM: 0x01 | nonce(12) | ciphertext+tag
)

// Sealer protects WeChat session keys at rest with AES-GCM.
type Sealer struct {
	aead cipher.AEAD // nil: no secret configured, keys are stored unencrypted
}

// NewSealer derives the AES-256 key from secret (FRONTDOOR_SECRET_KEY) with
// HKDF-SHA256. An empty secret gives a Sealer that stores keys as is.
func NewSealer(secret string) (*Sealer, error) {
	if secret == "" {
		return &Sealer{}, nil
	}
	if len(secret) < 16 {
		return nil, errors.New("FRONTDOOR_SECRET_KEY must be at least 16 characters (32 random bytes, base64, recommended)")
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "frontdoor session_key v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive session-key encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Encrypting reports whether session keys are encrypted at rest.
func (s *Sealer) Encrypting() bool { return s.aead != nil }

// Seal returns the stored form of a session key.
func (s *Sealer) Seal(sessionKey string) ([]byte, error) {
	if s.aead == nil {
		return append([]byte{sealedPlain}, sessionKey...), nil
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(sessionKey)+s.aead.Overhead())
	out[0] = sealedGCM
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:], []byte(sessionKey), []byte{sealedGCM}), nil
}

// Open recovers a session key from its stored form.
func (s *Sealer) Open(stored []byte) (string, error) {
	if len(stored) == 0 {
		return "", errors.New("no session key stored")
	}
	switch stored[0] {
	case sealedPlain:
		return string(stored[1:]), nil
	case sealedGCM:
		if s.aead == nil {
			return "", errors.New("session key is encrypted but FRONTDOOR_SECRET_KEY is not set")
		}
		n := s.aead.NonceSize()
		if len(stored) < 1+n+s.aead.Overhead() {
			return "", errors.New("sealed session key is truncated")
		}
		plain, err := s.aead.Open(nil, stored[1:1+n], stored[1+n:], []byte{sealedGCM})
		if err != nil {
			return "", errors.New("sealed session key does not open with FRONTDOOR_SECRET_KEY")
		}
		return string(plain), nil
	}
	return "", errors.New("unknown session key format")
}
