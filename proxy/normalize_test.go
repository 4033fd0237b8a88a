package proxy

import (
	"errors"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	accept := []struct{ in, want string }{
		{"/", "/"},
		{"/api/articles/1", "/api/articles/1"},
		{"/api/articles/", "/api/articles/"},
		{"/%61pi/x", "/api/x"},
		{"/a%20b", "/a b"},
		{"/a/..b/c.", "/a/..b/c."}, // dots inside a segment are just characters
		{"/a/.hidden", "/a/.hidden"},
		{"/a%2541", "/a%41"}, // a literal percent sign, harmless after one decode
		{"/caf%C3%A9", "/café"},
		{"/a/b:c@d", "/a/b:c@d"},
	}
	for _, tc := range accept {
		got, err := NormalizePath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	reject := []string{
		"", "api", "*",
		"/a/../b", "/a/./b", "/..", "/.", "/a/..", "/a/.",
		"/a/%2e%2e/b", "/a/%2E%2e/b", "/a/%2e%2E/b", "/a/%2E%2E/b", "/a/.%2e/b", "/a/%2e./b", "/a/%2e/b",
		"/a%2Fb", "/a%2fb",
		"/a%5Cb", "/a%5cb", `/a\b`,
		"/a%00b", "/a%0ab", "/a%0d%0ab", "/a\x00b", "/a\x7fb",
		"//a", "/a//b", "/a/b//",
		"/a;b", "/a/..;/b", "/a%3bb", "/a%3Bb",
		"/a%252e%252e/b", "/a%252Fb", "/a%255cb", "/a%2500", "/a%25%32%65",
		"/a%", "/a%2", "/a%zz", "/a%g0",
	}
	for _, in := range reject {
		got, err := NormalizePath(in)
		if err == nil {
			t.Errorf("NormalizePath(%q) = %q, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("NormalizePath(%q) error %v does not wrap ErrBadPath", in, err)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a/%2e%2e/b", "/a%2Fb", "//", "/a;b", "/%252e", "/caf%C3%A9/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			return
		}
		// Whatever is accepted must be a clean absolute path: the policy and
		// the upstream must never see a dot segment, an empty segment or a
		// backslash.
		if out == "" || out[0] != '/' {
			t.Fatalf("accepted %q as %q: not absolute", in, out)
		}
		if again, err := checkSegmentsOnly(out); err != nil {
			t.Fatalf("accepted %q as %q, which has %v", in, out, again)
		}
	})
}

func checkSegmentsOnly(p string) (string, error) {
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' || p[i] == 0 || p[i] == ';' {
			return "a forbidden byte", errors.New("bad")
		}
	}
	if err := checkSegments(p); err != nil {
		return err.Error(), err
	}
	return "", nil
}
