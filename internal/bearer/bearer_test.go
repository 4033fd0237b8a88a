package bearer

import (
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		values  []string
		raw     string
		present bool
		problem bool
	}{
		{nil, "", false, false},
		{[]string{"Bearer abc.def.ghi"}, "abc.def.ghi", true, false},
		{[]string{"bearer abc"}, "abc", true, false},
		{[]string{"BEARER abc"}, "abc", true, false},
		{[]string{"Basic dXNlcjpwYXNz"}, "", false, false},
		{[]string{"Bearer"}, "", false, true},
		{[]string{"Bearer "}, "", false, true},
		{[]string{"Bearer  abc"}, "", false, true},
		{[]string{"Bearer\tabc"}, "", false, true},
		{[]string{"bearer\t abc"}, "", false, true},
		{[]string{"Basic\tabc"}, "", false, false},
		{[]string{"Bearer abc def"}, "", false, true},
		{[]string{"Bearer a=b"}, "", false, true},
		{[]string{"Bearer abc", "Bearer def"}, "", false, true},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("Authorization", v)
		}
		raw, present, problem := Parse(h)
		if raw != tc.raw || present != tc.present || (problem != "") != tc.problem {
			t.Errorf("%q: got (%q, %v, %q)", tc.values, raw, present, problem)
		}
	}
}

// TestToken68Alphabet checks the bitmap against RFC 7235's grammar, one
// byte value at a time, in the middle of a token and as padding.
func TestToken68Alphabet(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		want := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			strings.IndexByte("-._~+/", b) >= 0
		if got := isToken68("ab" + string(b) + "cd"); got != want {
			t.Errorf("isToken68 with %q inside = %v, want %v", b, got, want)
		}
		if got := isToken68("ab" + string(b) + "=="); got != want && b != '=' {
			t.Errorf("isToken68 with %q before padding = %v, want %v", b, got, want)
		}
	}
	for _, s := range []string{"abc=", "abc==", "a=b", "abc=d=", "="} {
		want := !strings.Contains(strings.TrimRight(s, "="), "=")
		if got := isToken68(s); got != want {
			t.Errorf("isToken68(%q) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	// An RS256 access token's length.
	h := http.Header{"Authorization": {"Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 30) + "sig_-"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := Parse(h); !ok {
			b.Fatal("not parsed")
		}
	}
}
