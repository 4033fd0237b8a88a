package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 7638 §3.1.
	const (
		n    = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
		e    = "AQAB"
		want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(mustB64(t, n)), E: int(new(big.Int).SetBytes(mustB64(t, e)).Int64())}
	if got := Thumbprint(pub); got != want {
		t.Errorf("Thumbprint = %q, want %q", got, want)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateKey(t *testing.T) {
	sk, err := GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	priv := parsePKCS8PEM(t, sk.PrivatePEM)
	if priv.N.BitLen() != 2048 {
		t.Errorf("bits = %d, want 2048", priv.N.BitLen())
	}
	if sk.ID != Thumbprint(&priv.PublicKey) {
		t.Errorf("ID %q is not the thumbprint", sk.ID)
	}
	if !sk.CreatedAt.Equal(t0) || !sk.ActivatedAt.Equal(t0) || !sk.RetiredAt.IsZero() {
		t.Errorf("times = %v, %v, %v", sk.CreatedAt, sk.ActivatedAt, sk.RetiredAt)
	}
}

// parsePKCS8PEM requires exactly one PKCS#8 "PRIVATE KEY" block holding an
// RSA key.
func parsePKCS8PEM(t *testing.T, b []byte) *rsa.PrivateKey {
	t.Helper()
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("PrivatePEM is not one PRIVATE KEY block: %q", b)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("PKCS#8 key is %T", k)
	}
	return priv
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

func TestKeyFromPEM(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsa2048.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	legacyEncrypted := &pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"},
		Bytes:   []byte("ciphertext"),
	}

	tests := []struct {
		name    string
		pem     []byte
		wantErr string // substring; "" = accepted
	}{
		{name: "PKCS#1", pem: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048))},
		{name: "PKCS#8", pem: pkcs8(t, rsa2048)},
		{name: "PKCS#8 after text and a certificate-like block", pem: append([]byte("my key\n"), append(pemOf("CERTIFICATE", []byte("x")), pkcs8(t, rsa2048)...)...)},
		{name: "PKCS#1 1024 bits", pem: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024)), wantErr: "1024 bits"},
		{name: "PKCS#8 1024 bits", pem: pkcs8(t, rsa1024), wantErr: "1024 bits"},
		{name: "EC SEC1", pem: pemOf("EC PRIVATE KEY", ecDER), wantErr: "EC key"},
		{name: "EC PKCS#8", pem: pkcs8(t, ec), wantErr: "EC, not RSA"},
		{name: "Ed25519 PKCS#8", pem: pkcs8(t, ed), wantErr: "Ed25519, not RSA"},
		{name: "public key", pem: pemOf("PUBLIC KEY", pubDER), wantErr: `found "PUBLIC KEY"`},
		{name: "encrypted PKCS#8", pem: pemOf("ENCRYPTED PRIVATE KEY", []byte("x")), wantErr: "encrypted"},
		{name: "encrypted legacy PEM", pem: pem.EncodeToMemory(legacyEncrypted), wantErr: "encrypted"},
		{name: "corrupt PKCS#1", pem: pemOf("RSA PRIVATE KEY", []byte("garbage")), wantErr: "PKCS#1"},
		{name: "empty", pem: nil, wantErr: "no PEM block"},
		{name: "not PEM", pem: []byte("hello"), wantErr: "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, err := KeyFromPEM(tt.pem, t0)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("KeyFromPEM accepted it (kid %s)", sk.ID)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("KeyFromPEM: %v", err)
			}
			priv := parsePKCS8PEM(t, sk.PrivatePEM)
			if !priv.Equal(rsa2048) {
				t.Error("re-encoded key differs from the input")
			}
			if sk.ID != Thumbprint(&rsa2048.PublicKey) || !sk.ActivatedAt.Equal(t0) || !sk.CreatedAt.Equal(t0) {
				t.Errorf("key = %s %v %v", sk.ID, sk.CreatedAt, sk.ActivatedAt)
			}
		})
	}
}
