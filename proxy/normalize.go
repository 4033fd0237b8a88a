package proxy

import (
	"errors"
	"strings"
)

// ErrBadPath is wrapped by every path normalisation failure.
var ErrBadPath = errors.New("path cannot be normalised")

// PathError says why a request path was refused. Its text is safe to return
// to the client.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return "path refused: " + e.Reason }
func (e *PathError) Unwrap() error { return ErrBadPath }

// NormalizePath turns the escaped request path (as sent on the wire) into the
// one path that both the policy and the upstream will see, or refuses it.
//
// Nothing is collapsed or resolved silently: anything an upstream could read
// differently from the policy engine is refused instead. Refused: a path not
// starting with "/", empty segments ("//"), "." and ".." segments (raw or
// percent-encoded in any case), an encoded "/" or "\" (%2F, %5C), a raw "\",
// NUL and other control bytes, ";" path parameters (Tomcat-style servers read
// "/a;x/..;/b" as a traversal), malformed escapes, and double encodings of the
// above ("%252e", "%252f", "%255c", "%2500"), which an upstream that decodes
// twice would turn into the same attacks.
//
// The result is decoded (so "/%61pi" matches the route "/api"); the upstream
// receives it re-escaped canonically by net/url.
func NormalizePath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", &PathError{"path must start with /"}
	}
	// Fast path: nothing escaped and nothing suspicious needs no allocation.
	needsDecode := false
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '%':
			needsDecode = true
		case c == '\\':
			return "", &PathError{`backslash in path`}
		case c == ';':
			return "", &PathError{"path parameters (;) are not allowed"}
		case c < 0x20 || c == 0x7f:
			return "", &PathError{"control character in path"}
		}
	}
	path := escaped
	if needsDecode {
		var err error
		if path, err = decodePath(escaped); err != nil {
			return "", err
		}
	}
	if err := checkSegments(path); err != nil {
		return "", err
	}
	return path, nil
}

// decodePath percent-decodes once, refusing encodings that would change the
// path's structure or hide a second layer of encoding.
func decodePath(escaped string) (string, error) {
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(escaped) {
			return "", &PathError{"malformed percent-encoding"}
		}
		hi, ok1 := unhex(escaped[i+1])
		lo, ok2 := unhex(escaped[i+2])
		if !ok1 || !ok2 {
			return "", &PathError{"malformed percent-encoding"}
		}
		d := hi<<4 | lo
		switch {
		case d == '/':
			return "", &PathError{"encoded slash (%2F) in path"}
		case d == '\\':
			return "", &PathError{`encoded backslash (%5C) in path`}
		case d == ';':
			return "", &PathError{"path parameters (;) are not allowed"}
		case d < 0x20 || d == 0x7f:
			return "", &PathError{"encoded control character in path"}
		}
		b.WriteByte(d)
		i += 2
	}
	decoded := b.String()
	// Whatever spelling produced it ("%252e", "%25%32%65", ...), a decoded
	// path that still holds an escape of a structural byte is an attack on
	// upstreams that decode twice.
	for i := 0; i+2 < len(decoded); i++ {
		if decoded[i] == '%' && isDangerousEscape(decoded[i+1], decoded[i+2]) {
			return "", &PathError{"double percent-encoding in path"}
		}
	}
	return decoded, nil
}

// isDangerousEscape reports whether "%XY" decodes to a byte that this
// normaliser refuses or treats structurally ('.', '/', '\', ';', NUL, or a
// further '%'), i.e. whether "%25XY" is a double encoding of an attack.
func isDangerousEscape(x, y byte) bool {
	hi, ok1 := unhex(x)
	lo, ok2 := unhex(y)
	if !ok1 || !ok2 {
		return false
	}
	switch d := hi<<4 | lo; {
	case d == '.', d == '/', d == '\\', d == ';', d == '%', d < 0x20, d == 0x7f:
		return true
	}
	return false
}

func checkSegments(path string) error {
	// path[0] == '/'. Walk segments between slashes; the last one may be
	// empty (a trailing slash is forwarded as sent).
	start := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		seg := path[start:i]
		switch {
		case seg == "" && i < len(path):
			return &PathError{"empty path segment (//)"}
		case seg == "." || seg == "..":
			return &PathError{"dot segment in path"}
		}
		start = i + 1
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
