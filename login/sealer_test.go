package login

import (
	"bytes"
	"testing"
)

func TestSealerRoundTrip(t *testing.T) {
	const sk = "tiihtNczf5v6AKRyjwEUhQ=="
	enc, err := NewSealer("a-long-enough-secret-for-tests")
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewSealer("")
	for name, s := range map[string]*Sealer{"encrypting": enc, "plain": plain} {
		stored, err := s.Seal(sk)
		if err != nil {
			t.Fatal(err)
		}
		if s.Encrypting() && bytes.Contains(stored, []byte(sk)) {
			t.Errorf("%s: the session key is visible in the sealed form", name)
		}
		got, err := s.Open(stored)
		if err != nil || got != sk {
			t.Errorf("%s: Open = %q, %v", name, got, err)
		}
	}
	// Two seals of one key differ (random nonce).
	a, _ := enc.Seal(sk)
	b, _ := enc.Seal(sk)
	if bytes.Equal(a, b) {
		t.Error("sealing is deterministic")
	}
	// Tampering, a wrong secret, and a missing secret all fail.
	a[len(a)-1] ^= 1
	if _, err := enc.Open(a); err == nil {
		t.Error("tampered ciphertext opened")
	}
	other, _ := NewSealer("another-long-enough-secret")
	b2, _ := enc.Seal(sk)
	if _, err := other.Open(b2); err == nil {
		t.Error("opened with the wrong secret")
	}
	if _, err := plain.Open(b2); err == nil {
		t.Error("an encrypted key opened without a secret")
	}
	if _, err := NewSealer("short"); err == nil {
		t.Error("a short secret was accepted")
	}
	for _, bad := range [][]byte{nil, {0x01, 1, 2}, {0x07, 'x'}} {
		if _, err := enc.Open(bad); err == nil {
			t.Errorf("Open(%v) succeeded", bad)
		}
	}
}
