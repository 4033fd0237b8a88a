package bench

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
)

// signingKey is generated once: RSA key generation takes far longer than a
// signature and is not what is measured.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// signingInput is shaped and sized like the header.claims part of a
// frontdoor access token, the input of every RS256 signature at login.
var signingInput = []byte(b64(`{"alg":"RS256","kid":"Wc3nq0x8dE5bX1m6YpLrT2vU4sA9fH7jK0oQ-iNgZyM","typ":"JWT"}`) + "." +
	b64(`{"iss":"http://localhost:8080","aud":["miniprogram"],"sub":"1048576","exp":1767232800,"nbf":1767225600,"iat":1767225600,`+
		`"jti":"3q2-7wAAAAAAAAAAAAAAAA","roles":["subscriber"],"amr":["wechat"],"ver":1}`))

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sign is the work of one RS256 signature: SHA-256 of the signing input,
// then RSASSA-PKCS1-v1_5 with the private key.
func sign(b *testing.B, k *rsa.PrivateKey) {
	sum := sha256.Sum256(signingInput)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	if len(sig) != 256 {
		b.Fatalf("signature of %d bytes, want 256", len(sig))
	}
}

// BenchmarkSignPKCS1v15 is the signing rate of one core.
func BenchmarkSignPKCS1v15(b *testing.B) {
	k := signingKey()
	for b.Loop() {
		sign(b, k)
	}
}

// BenchmarkSignPKCS1v15Parallel is the signing rate of the whole machine:
// GOMAXPROCS goroutines signing at once. Its ns/op is wall time per
// signature, so 1e9/ns_op is signatures per second.
func BenchmarkSignPKCS1v15Parallel(b *testing.B) {
	k := signingKey()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sign(b, k)
		}
	})
}

// TestSigningInput guards the benchmark's premise: the input is as long as a
// real access token's and the signature verifies.
func TestSigningInput(t *testing.T) {
	if n := len(signingInput); n < 300 || n > 500 {
		t.Fatalf("signing input of %d bytes; a frontdoor access token's is 300-500", n)
	}
	if strings.Count(string(signingInput), ".") != 1 {
		t.Fatal("signing input is not header.claims")
	}
	k := signingKey()
	sum := sha256.Sum256(signingInput)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatal(err)
	}
}
