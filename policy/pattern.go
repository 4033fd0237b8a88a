package policy

import (
	"errors"
	"fmt"
	"strings"
)

// segKind is the kind of one pattern segment.
type segKind uint8

const (
	segLiteral segKind = iota
	segParam           // "*" or "{name}": exactly one segment
	segGlob            // "**": zero or more trailing segments
)

// segment is one parsed pattern segment. For a literal, text is the literal;
// for a {name} parameter it is the name; otherwise it is empty.
type segment struct {
	kind segKind
	text string
}

// Precedence ranks of what a pattern has at a segment position. A pattern
// that ends at a position ranks between a one-segment wildcard and "**",
// because "/a" and "/a/**" both match "/a" and the exact pattern is the more
// specific of the two.
const (
	rankGlob = iota
	rankEnd
	rankParam
	rankLiteral
)

func rankAt(segs []segment, i int) int {
	if i >= len(segs) {
		return rankEnd
	}
	switch segs[i].kind {
	case segLiteral:
		return rankLiteral
	case segParam:
		return rankParam
	default:
		return rankGlob
	}
}

// comparePatterns orders patterns by specificity: negative when a is more
// specific than b, zero when they are equivalent. Literals are compared by
// text only to make the order total; two patterns that differ in a literal
// never match the same path.
func comparePatterns(a, b []segment) int {
	for i := 0; ; i++ {
		ra, rb := rankAt(a, i), rankAt(b, i)
		if ra != rb {
			return rb - ra
		}
		switch ra {
		case rankEnd, rankGlob:
			return 0
		case rankLiteral:
			if c := strings.Compare(a[i].text, b[i].text); c != 0 {
				return c
			}
		}
	}
}

// parsePattern parses and validates a route pattern. A single trailing "/"
// is ignored, so "/a/" and "/a" are the same pattern; "/" has no segments.
func parsePattern(p string) ([]segment, error) {
	if p == "" {
		return nil, errors.New("path is required")
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("pattern %q must start with \"/\"", p)
	}
	if p == "/" {
		return nil, nil
	}
	if strings.Contains(p, "//") {
		return nil, fmt.Errorf("pattern %q has an empty segment (\"//\")", p)
	}
	parts := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	segs := make([]segment, 0, len(parts))
	for i, s := range parts {
		seg, err := parseSegment(s)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		if seg.kind == segGlob && i != len(parts)-1 {
			return nil, fmt.Errorf("pattern %q: \"**\" is only allowed as the last segment", p)
		}
		if seg.kind == segParam && seg.text != "" {
			for _, prev := range segs {
				if prev.kind == segParam && prev.text == seg.text {
					return nil, fmt.Errorf("pattern %q: parameter {%s} is used twice", p, seg.text)
				}
			}
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

func parseSegment(s string) (segment, error) {
	switch {
	case s == "**":
		return segment{kind: segGlob}, nil
	case s == "*":
		return segment{kind: segParam}, nil
	case len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}':
		name := s[1 : len(s)-1]
		if !isParamName(name) {
			return segment{}, fmt.Errorf("segment %q: parameter names match [A-Za-z_][A-Za-z0-9_]*", s)
		}
		return segment{kind: segParam, text: name}, nil
	}
	if err := checkLiteral(s); err != nil {
		return segment{}, fmt.Errorf("segment %q: %w", s, err)
	}
	if strings.ContainsAny(s, "*{}") {
		return segment{}, fmt.Errorf("segment %q: a wildcard must be a whole segment (\"*\", \"**\" or \"{name}\")", s)
	}
	return segment{kind: segLiteral, text: s}, nil
}

// checkLiteral rejects literal path segments that a normalised request path
// can never contain, so a route with one could never match.
func checkLiteral(s string) error {
	if s == "" {
		return errors.New("empty segment")
	}
	if s == "." || s == ".." {
		return errors.New("dot segments are not allowed")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			return errors.New("\"%\" is not allowed (patterns match the decoded path)")
		case c == '?' || c == '#':
			return fmt.Errorf("%q is not allowed (the query and fragment are never matched)", c)
		case c == '\\':
			return errors.New("\"\\\" is not allowed")
		case c < 0x20 || c == 0x7f:
			return errors.New("control characters are not allowed")
		}
	}
	return nil
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// nextSegment splits the first segment off a path without its leading "/".
// A trailing "/" leaves an empty remainder, which is why "/a/" matches like "/a".
func nextSegment(rest string) (seg, after string) {
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i], rest[i+1:]
	}
	return rest, ""
}
