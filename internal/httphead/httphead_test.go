package httphead

import (
	"bufio"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// name64 and name65 are header names at and just over ParseFields' limit.
var (
	name64 = "X-" + strings.Repeat("a", 62)
	name65 = "X-" + strings.Repeat("a", 63)
)

// visible is every visible ASCII byte, all allowed in a field value.
var visible = func() string {
	var b strings.Builder
	for c := byte('!'); c <= '~'; c++ {
		b.WriteByte(c)
	}
	return b.String()
}()

var parseFieldsTests = []struct {
	name string
	in   string
	ok   bool
	want http.Header // when ok
}{
	// Accepted.
	{"no fields", "\r\n", true, http.Header{}},
	{"one field", "Host: example.com\r\n\r\n", true, http.Header{"Host": {"example.com"}}},
	{"three fields", "Host: a\r\nAccept: */*\r\nUser-Agent: t/1\r\n\r\n", true,
		http.Header{"Host": {"a"}, "Accept": {"*/*"}, "User-Agent": {"t/1"}}},
	{"no space after colon", "Host:a\r\n\r\n", true, http.Header{"Host": {"a"}}},
	{"OWS trimmed", "A: \t v \t\r\n\r\n", true, http.Header{"A": {"v"}}},
	{"inner spaces kept", "A: a  \t b\r\n\r\n", true, http.Header{"A": {"a  \t b"}}},
	{"colon in value", "A: b:c::\r\n\r\n", true, http.Header{"A": {"b:c::"}}},
	{"all visible bytes", "A: " + visible + "\r\n\r\n", true, http.Header{"A": {visible}}},
	{"empty value", "X-Empty:\r\n\r\n", true, http.Header{"X-Empty": {""}}},
	{"blank value", "X-Empty:  \t \r\n\r\n", true, http.Header{"X-Empty": {""}}},
	{"lower-case common", "content-length: 5\r\nhost: h\r\nset-cookie: a\r\nte: trailers\r\nx-real-ip: 1\r\n\r\n", true,
		http.Header{"Content-Length": {"5"}, "Host": {"h"}, "Set-Cookie": {"a"}, "Te": {"trailers"}, "X-Real-Ip": {"1"}}},
	{"upper-case common", "CONTENT-TYPE: t\r\nX-FORWARDED-FOR: f\r\n\r\n", true,
		http.Header{"Content-Type": {"t"}, "X-Forwarded-For": {"f"}}},
	{"mixed-case common", "cOnTeNt-LeNgTh: 1\r\n\r\n", true, http.Header{"Content-Length": {"1"}}},
	{"lower-case uncommon", "x-custom-thing: 1\r\nwww-authenticate: b\r\n\r\n", true,
		http.Header{"X-Custom-Thing": {"1"}, "Www-Authenticate": {"b"}}},
	{"underscore", "x_custom: 1\r\nfoo_bar-baz: 2\r\n_a: 3\r\n\r\n", true,
		http.Header{"X_custom": {"1"}, "Foo_bar-Baz": {"2"}, "_a": {"3"}}},
	{"digits", "x-1a: 1\r\n1abc: 2\r\na1-b2: 3\r\n9: 4\r\n\r\n", true,
		http.Header{"X-1a": {"1"}, "1abc": {"2"}, "A1-B2": {"3"}, "9": {"4"}}},
	{"other tchars", "x.a-b.c: 1\r\n!#$%&'*+-.^_`|~: 2\r\n\r\n", true,
		http.Header{"X.a-B.c": {"1"}, "!#$%&'*+-.^_`|~": {"2"}}},
	{"dashes", "-a--b-: 1\r\n\r\n", true, http.Header{"-A--B-": {"1"}}},
	{"single letter", "a: b\r\n\r\n", true, http.Header{"A": {"b"}}},
	{"repeated", "Set-Cookie: a\r\nset-cookie: b\r\nSET-COOKIE: c\r\n\r\n", true,
		http.Header{"Set-Cookie": {"a", "b", "c"}}},
	{"interleaved repeats", "A: 1\r\nB: 2\r\nA: 3\r\nB:\r\n\r\n", true,
		http.Header{"A": {"1", "3"}, "B": {"2", ""}}},
	{"name of 64 bytes", name64 + ": v\r\n\r\n", true, http.Header{"X-A" + strings.Repeat("a", 61): {"v"}}},

	// Rejected: framing.
	{"empty", "", false, nil},
	{"no blank line", "Host: x\r\n", false, nil},
	{"no CRLF at all", "Host: x", false, nil},
	{"blank line is bare LF", "Host: x\r\n\n", false, nil},
	{"blank line cut short", "Host: x\r\n\r", false, nil},
	{"bare LF line end", "Host: x\nA: b\r\n\r\n", false, nil},
	{"bare LF before CRLF", "Host: x\n\r\n\r\n", false, nil},
	{"bare LF only", "\n", false, nil},
	{"bare CR in value", "Host: x\ry\r\n\r\n", false, nil},
	{"bare CR at line end", "Host: x\r\r\n\r\n", false, nil},
	{"bare CR line", "\r\r\n\r\n", false, nil},
	{"obs-fold space", "A: b\r\n c\r\n\r\n", false, nil},
	{"obs-fold tab", "A: b\r\n\tc\r\n\r\n", false, nil},
	{"leading space", " A: b\r\n\r\n", false, nil},
	// Rejected: names.
	{"space before colon", "A : b\r\n\r\n", false, nil},
	{"tab before colon", "A\t: b\r\n\r\n", false, nil},
	{"space in name", "A B: c\r\n\r\n", false, nil},
	{"no colon", "A b\r\n\r\n", false, nil},
	{"empty name", ": b\r\n\r\n", false, nil},
	{"separator in name", "A(b): c\r\n\r\n", false, nil},
	{"slash in name", "A/b: c\r\n\r\n", false, nil},
	{"quote in name", "\"a\": c\r\n\r\n", false, nil},
	{"non-ASCII name", "caf\xc3\xa9: v\r\n\r\n", false, nil},
	{"NUL in name", "A\x00: v\r\n\r\n", false, nil},
	{"name of 65 bytes", name65 + ": v\r\n\r\n", false, nil},
	{"bad second line", "A: b\r\nB c\r\n\r\n", false, nil},
	// Rejected: values.
	{"NUL in value", "A: b\x00c\r\n\r\n", false, nil},
	{"control in value", "A: \x01\r\n\r\n", false, nil},
	{"ESC in value", "A: \x1b[0m\r\n\r\n", false, nil},
	{"DEL in value", "A: b\x7f\r\n\r\n", false, nil},
	{"non-ASCII value", "A: caf\xc3\xa9\r\n\r\n", false, nil},
	{"high byte value", "A: \xff\r\n\r\n", false, nil},
	{"vertical tab in value", "A: b\vc\r\n\r\n", false, nil},
	{"form feed value", "A: \f\r\n\r\n", false, nil},
}

func TestParseFields(t *testing.T) {
	for _, tt := range parseFieldsTests {
		h, ok := ParseFields(tt.in)
		if ok != tt.ok {
			t.Errorf("%s: ParseFields(%q) ok = %v, want %v", tt.name, tt.in, ok, tt.ok)
			continue
		}
		if !ok {
			if h != nil {
				t.Errorf("%s: ParseFields(%q) = %v with ok false, want nil", tt.name, tt.in, h)
			}
			continue
		}
		if !reflect.DeepEqual(h, tt.want) {
			t.Errorf("%s: ParseFields(%q) = %#v, want %#v", tt.name, tt.in, h, tt.want)
		}
	}
}

// TestParseFieldsValuesDoNotAlias checks that appending to one name's
// values cannot overwrite another's: the values share one backing array.
func TestParseFieldsValuesDoNotAlias(t *testing.T) {
	h, ok := ParseFields("A: 1\r\nB: 2\r\nA: 3\r\nC: 4\r\n\r\n")
	if !ok {
		t.Fatal("not accepted")
	}
	h["B"] = append(h["B"], "x")
	h.Add("A", "5")
	want := http.Header{"A": {"1", "3", "5"}, "B": {"2", "x"}, "C": {"4"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after appends: %v, want %v", h, want)
	}
}

// readMIME reads s as net/http reads a head's fields.
func readMIME(s string) (http.Header, error) {
	m, err := textproto.NewReader(bufio.NewReader(strings.NewReader(s))).ReadMIMEHeader()
	return http.Header(m), err
}

// checkLikeTextproto fails t unless textproto reads s into h.
func checkLikeTextproto(t *testing.T, s string, h http.Header) {
	t.Helper()
	want, err := readMIME(s)
	if err != nil {
		t.Fatalf("ParseFields accepted %q, which textproto rejects: %v", s, err)
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("ParseFields(%q) = %#v, textproto reads %#v", s, h, want)
	}
}

func TestParseFieldsLikeTextproto(t *testing.T) {
	n := 0
	for _, tt := range parseFieldsTests {
		if h, ok := ParseFields(tt.in); ok {
			t.Run(tt.name, func(t *testing.T) { checkLikeTextproto(t, tt.in, h) })
			n++
		}
	}
	// Every common name in lower case, in upper case and as it is.
	for k := range commonKeys {
		for _, name := range []string{k, strings.ToLower(k), strings.ToUpper(k)} {
			s := name + ": v\r\n\r\n"
			h, ok := ParseFields(s)
			if !ok {
				t.Errorf("ParseFields(%q) refused", s)
				continue
			}
			checkLikeTextproto(t, s, h)
			n++
		}
	}
	if n < 50 {
		t.Errorf("only %d accepted inputs compared", n)
	}
}

func TestCanonicalKeyLikeTextproto(t *testing.T) {
	names := []string{
		"a", "A", "aB", "a-b", "A-B", "a--b", "-", "--a", "a-", "x_y-z", "X_Y-Z",
		"x-1a", "1-a", "a.b-c", "www-authenticate", "WWW-AUTHENTICATE",
		"content-md5", "sec-websocket-key", "Sec-Websocket-Key", "X-Real-IP",
		"x-real-ip", "etag", "ETAG", "dnt", "a`b|c~d", name64,
	}
	for k := range commonKeys {
		names = append(names, k, strings.ToLower(k), strings.ToUpper(k))
	}
	var buf [64]byte
	for _, name := range names {
		if got, want := canonicalKey(name, &buf), textproto.CanonicalMIMEHeaderKey(name); got != want {
			t.Errorf("canonicalKey(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCommonKeysCanonical(t *testing.T) {
	for k, v := range commonKeys {
		if k != v || textproto.CanonicalMIMEHeaderKey(k) != k {
			t.Errorf("commonKeys[%q] = %q, not canonical", k, v)
		}
	}
}

func TestParseFieldsAllocs(t *testing.T) {
	for _, s := range []string{
		"Host: example.com\r\nAccept: */*\r\nUser-Agent: test/1.0\r\n\r\n",
		"host: example.com\r\naccept: */*\r\nuser-agent: test/1.0\r\n\r\n",
		"Content-Type: text/plain\r\nContent-Length: 12\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n",
	} {
		n := testing.AllocsPerRun(200, func() {
			if _, ok := ParseFields(s); !ok {
				panic("refused")
			}
		})
		if n > 3 {
			t.Errorf("ParseFields(%q): %v allocations, want <= 3", s, n)
		}
	}
	// One more field of a common name costs no more.
	three := testing.AllocsPerRun(200, func() { ParseFields("Host: a\r\nAccept: b\r\nCookie: c\r\n\r\n") })
	four := testing.AllocsPerRun(200, func() { ParseFields("Host: a\r\nAccept: b\r\nCookie: c\r\nDate: d\r\n\r\n") })
	if four != three {
		t.Errorf("3 fields: %v allocations, 4 fields: %v", three, four)
	}
	// A repeated name grows its values slice with append (cap 1), so it
	// costs allocations beyond the map and values: logged, not asserted.
	rep := testing.AllocsPerRun(200, func() { ParseFields("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n") })
	t.Logf("3 fields of one name: %v allocations", rep)
}

func TestIsToken(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"GET", true},
		{"get", true},
		{"X-Foo_Bar.1", true},
		{"!#$%&'*+-.^_`|~", true},
		{"0123456789", true},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", true},
		{"a b", false},
		{" a", false},
		{"a\t", false},
		{"a:b", false},
		{"a\x00", false},
		{"\x7f", false},
		{"caf\xc3\xa9", false},
		{"\xff", false},
		{"a\r\n", false},
	}
	for _, c := range "()<>@,;:\\\"/[]?={}" {
		tests = append(tests, struct {
			s    string
			want bool
		}{"a" + string(c), false})
	}
	for _, tt := range tests {
		if got := IsToken(tt.s); got != tt.want {
			t.Errorf("IsToken(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
	// Every byte: a token byte is exactly one textproto accepts in a name
	// it canonicalises.
	for c := 0; c < 256; c++ {
		s := "a" + string(rune(c))
		if c >= 0x80 {
			s = "a" + string([]byte{byte(c)})
		}
		_, err := readMIME(s + ": v\r\n\r\n")
		// textproto reads "a : v" (uncanonicalised) and "a:: v" too.
		textprotoOK := err == nil && c != ' ' && c != ':'
		if IsToken(s) != textprotoOK {
			t.Errorf("IsToken(%q) = %v, textproto accepts name: %v", s, IsToken(s), textprotoOK)
		}
	}
}

func TestParseLength(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"007", 7, true},
		{"1234567890", 1234567890, true},
		{"999999999999999999", 999999999999999999, true},
		{"000000000000000000", 0, true},
		{"", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{"-0", 0, false},
		{"1000000000000000000", 0, false},  // 19 digits
		{"9223372036854775807", 0, false},  // 19 digits, MaxInt64
		{"0000000000000000001", 0, false},  // 19 digits, small value
		{"99999999999999999999", 0, false}, // 20 digits
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1 2", 0, false},
		{" ", 0, false},
		{"\t1", 0, false},
		{"1,1", 0, false},
		{"1_000", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
		{"1.0", 0, false},
		{"١", 0, false}, // Arabic-Indic digit one
	}
	for _, tt := range tests {
		got, ok := ParseLength(tt.in)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("ParseLength(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHasToken(t *testing.T) {
	tests := []struct {
		vv   []string
		want bool
	}{
		{nil, false},
		{[]string{}, false},
		{[]string{""}, false},
		{[]string{"close"}, true},
		{[]string{"Close"}, true},
		{[]string{"CLOSE"}, true},
		{[]string{"cLoSe"}, true},
		{[]string{" close "}, true},
		{[]string{"\tclose\t"}, true},
		{[]string{"keep-alive, close"}, true},
		{[]string{"keep-alive,close"}, true},
		{[]string{"close, keep-alive"}, true},
		{[]string{"upgrade , \tClose\t , x"}, true},
		{[]string{",,close,,"}, true},
		{[]string{"keep-alive", "close"}, true},
		{[]string{"keep-alive", "x, CLOSE"}, true},
		{[]string{"", "close"}, true},
		{[]string{"keep-alive"}, false},
		{[]string{"closed"}, false},
		{[]string{"clos"}, false},
		{[]string{"x-close"}, false},
		{[]string{"clo\u017fe"}, false}, // a long s folds to s only in Unicode
		{[]string{"close-x"}, false},
		{[]string{"cl ose"}, false},
		{[]string{"close;q=1"}, false},
		{[]string{"\"close\""}, false},
		{[]string{"keep-alive", "upgrade"}, false},
		{[]string{",", " , "}, false},
	}
	for _, tt := range tests {
		if got := HasToken(tt.vv, "close"); got != tt.want {
			t.Errorf("HasToken(%q, close) = %v, want %v", tt.vv, got, tt.want)
		}
	}
	if !HasToken([]string{"Keep-Alive"}, "keep-alive") {
		t.Error("HasToken(Keep-Alive, keep-alive) = false")
	}
}

func TestHasBareLF(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"abc", false},
		{"\r", false},
		{"\r\n", false},
		{"a\r\nb\r\n\r\n", false},
		{"\r\r\n", false},
		{"\n", true},
		{"a\n", true},
		{"a\nb", true},
		{"a\r\n\n", true},
		{"a\r\nb\n\r\n", true},
		{"\n\r\n", true},
		{"a\r\r\n\n", true},
	}
	for _, tt := range tests {
		if got := HasBareLF([]byte(tt.in)); got != tt.want {
			t.Errorf("HasBareLF(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseFields checks ParseFields' promise: what it accepts, textproto
// reads into the same map.
func FuzzParseFields(f *testing.F) {
	for _, tt := range parseFieldsTests {
		f.Add(tt.in)
	}
	f.Add("Content-Type: text/html; charset=utf-8\r\nContent-Length: 0\r\nx-a_b: \r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := ParseFields(s)
		if !ok {
			if h != nil {
				t.Fatalf("ParseFields(%q) = %v with ok false", s, h)
			}
			return
		}
		checkLikeTextproto(t, s, h)
		for k, vv := range h {
			if !IsToken(k) || k != textproto.CanonicalMIMEHeaderKey(k) || len(vv) == 0 {
				t.Fatalf("ParseFields(%q): key %q, values %q", s, k, vv)
			}
		}
	})
}

// TestVisibleASCIIWordAtATime puts every byte value at every offset of
// values of several lengths, so each lane of the eight-byte check and the
// tail loop meet every byte.
func TestVisibleASCIIWordAtATime(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 16, 23} {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				want := c == '\t' || (c >= ' ' && c < 0x7f)
				if got := visibleASCII(string(b)); got != want {
					t.Fatalf("visibleASCII(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}
