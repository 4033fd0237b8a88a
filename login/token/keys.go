package token

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"frontdoor/login/store"
)

// MinKeyBits is the smallest RSA modulus accepted for a signing key.
const MinKeyBits = 2048

// generatedKeyBits is the size of keys frontdoor generates itself.
const generatedKeyBits = 2048

// GenerateKey creates a new RSA-2048 signing key, created and activated at
// now, encoded as PKCS#8 PEM, with its RFC 7638 thumbprint as ID.
func GenerateKey(now time.Time) (store.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, generatedKeyBits)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate RSA key: %w", err)
	}
	return signingKey(priv, now)
}

// KeyFromPEM turns an operator's existing RSA private key into a signing key
// created and activated at now. It accepts the first private key block of
// pemBytes in PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") form,
// requires RSA of at least MinKeyBits bits, and re-encodes it as PKCS#8.
func KeyFromPEM(pemBytes []byte, now time.Time) (store.SigningKey, error) {
	priv, err := parsePrivatePEM(pemBytes)
	if err != nil {
		return store.SigningKey{}, err
	}
	if bits := priv.N.BitLen(); bits < MinKeyBits {
		return store.SigningKey{}, fmt.Errorf("RSA key has %d bits; at least %d are required", bits, MinKeyBits)
	}
	if err := priv.Validate(); err != nil {
		return store.SigningKey{}, fmt.Errorf("invalid RSA key: %w", err)
	}
	return signingKey(priv, now)
}

func parsePrivatePEM(pemBytes []byte) (*rsa.PrivateKey, error) {
	var seen []string
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New(`PEM key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)`)
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS#1 RSA private key: %w", err)
			}
			return priv, nil
		case "PRIVATE KEY":
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
			}
			priv, ok := key.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("PKCS#8 key is %s, not RSA: frontdoor signs with RS256", keyTypeName(key))
			}
			return priv, nil
		case "EC PRIVATE KEY":
			return nil, errors.New("PEM holds an EC key, not RSA: frontdoor signs with RS256")
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New(`PEM key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)`)
		}
		seen = append(seen, fmt.Sprintf("%q", block.Type))
	}
	if len(seen) == 0 {
		return nil, errors.New("no PEM block found")
	}
	return nil, fmt.Errorf(`no "RSA PRIVATE KEY" or "PRIVATE KEY" PEM block found (found %s)`, strings.Join(seen, ", "))
}

func keyTypeName(key any) string {
	switch key.(type) {
	case *ecdsa.PrivateKey, *ecdh.PrivateKey:
		return "EC"
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

func signingKey(priv *rsa.PrivateKey, now time.Time) (store.SigningKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode PKCS#8: %w", err)
	}
	return store.SigningKey{
		ID:          Thumbprint(&priv.PublicKey),
		PrivatePEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		CreatedAt:   now,
		ActivatedAt: now,
	}, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of pub: the unpadded
// base64url SHA-256 of its canonical JWK {"e","kty","n"}.
func Thumbprint(pub *rsa.PublicKey) string {
	// The members are in lexicographic order and the values are base64url,
	// which needs no JSON escaping, so the canonical form can be built
	// directly.
	e := big.NewInt(int64(pub.E)).Bytes()
	canonical := `{"e":"` + base64.RawURLEncoding.EncodeToString(e) +
		`","kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
