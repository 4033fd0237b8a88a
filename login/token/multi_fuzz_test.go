package token

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzMultiVerifier feeds arbitrary strings to the dispatcher that reads a
// token's unverified iss. Nothing may panic, every refusal must be a
// VerifyError, and whatever it accepts must be a token our own keys signed.
func FuzzMultiVerifier(f *testing.F) {
	e := newEnv(f, &fakeKeyStore{}, newClock(t0))
	mv := NewMultiVerifier(e.ver, e.cfg.Issuer, NewTrustedIssuers(TrustedOptions{}))
	good := e.mint(f, MintRequest{Subject: "42", Roles: []string{"editor"}}).Token
	f.Add(good)
	head, _, _ := strings.Cut(good, ".")
	for _, payload := range []string{
		`{"iss":"http://localhost:8080"}`, `{"iss":7}`, `{"ISS":"x","iss":"http://localhost:8080"}`,
		`{"iss":"https://sso.example"}`, `[]`, `null`, `{"iss":null}`, "",
	} {
		f.Add(head + "." + b64([]byte(payload)) + ".c2ln")
	}
	f.Add("..")
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := mv.Verify(context.Background(), raw)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || c != nil {
				t.Fatalf("refusal is %T %v with claims %v", err, err, c)
			}
			return
		}
		if c.Issuer != e.cfg.Issuer {
			t.Fatalf("accepted a token of issuer %q", c.Issuer)
		}
		if _, err := e.ver.Verify(context.Background(), raw); err != nil {
			t.Fatalf("the dispatcher accepted what our verifier refuses: %v", err)
		}
	})
}
