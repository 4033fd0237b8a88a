package yamlconf

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// inner is a small nested section.
type inner struct {
	V int `yaml:"v"`
	W int `yaml:"w"`
}

type common struct {
	Extra string `yaml:"extra"`
}

type deep struct {
	Deep int `yaml:"deep"`
}

type label string

// embedded is unexported on purpose: inlining it must still work.
type embedded struct {
	Emb string `yaml:"emb"`
}

// kinds has a field of every supported kind.
type kinds struct {
	S     string         `yaml:"s"`
	B     bool           `yaml:"b"`
	I     int            `yaml:"i"`
	I8    int8           `yaml:"i8"`
	I16   int16          `yaml:"i16"`
	I32   int32          `yaml:"i32"`
	I64   int64          `yaml:"i64"`
	U     uint           `yaml:"u"`
	U8    uint8          `yaml:"u8"`
	U16   uint16         `yaml:"u16"`
	U32   uint32         `yaml:"u32"`
	U64   uint64         `yaml:"u64"`
	F32   float32        `yaml:"f32"`
	F64   float64        `yaml:"f64"`
	D     time.Duration  `yaml:"d"`
	L     []string       `yaml:"l"`
	LL    [][]int        `yaml:"ll"`
	A     [2]int         `yaml:"a"`
	M     map[string]int `yaml:"m"`
	ML    map[label]bool `yaml:"ml"`
	P     *int           `yaml:"p"`
	PS    *inner         `yaml:"ps"`
	N     inner          `yaml:"n"`
	Any   any            `yaml:"any"`
	T     netip.Addr     `yaml:"t"`
	TP    *netip.Prefix  `yaml:"tp"`
	Named label          `yaml:"named"`
	Lower string         `yaml:",omitempty"`

	NoTag string
	Dash  string `yaml:"-"`

	common   `yaml:",inline"` // unexported embedded struct
	*deep    `yaml:",inline"` // unexported embedded pointer: cannot be allocated, so rejected
	embedded `yaml:",inline"`
}

func ptr[T any](v T) *T { return &v }

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// errorStrings flattens err into the texts of its *Error leaves, failing the
// test if any leaf is not an *Error.
func errorStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range multi.Unwrap() {
			out = append(out, errorStrings(t, e)...)
		}
		return out
	}
	var e *Error
	if !errors.As(err, &e) || error(e) != err {
		t.Fatalf("error %q (%T) is not an *Error", err, err)
	}
	return []string{e.Error()}
}

func decode[T any](t *testing.T, src string, out *T) error {
	t.Helper()
	doc, err := Parse("config.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return doc.Decode(out)
}

func TestDecodeKinds(t *testing.T) {
	// kinds embeds *deep, which is unexported; that must be reported, so
	// these cases use kindsOK, the same struct without it.
	tests := []struct {
		name string
		src  string
		want kindsOK
	}{
		{"string", "s: hello", kindsOK{S: "hello"}},
		{"string from int", "s: 42", kindsOK{S: "42"}},
		{"string from bool", "s: true", kindsOK{S: "true"}},
		{"string from null", "s: ~", kindsOK{}},
		{"quoted string", `s: "a: b"`, kindsOK{S: "a: b"}},
		{"block string", "s: |\n  line1\n  line2\n", kindsOK{S: "line1\nline2\n"}},
		{"bool true", "b: true", kindsOK{B: true}},
		{"bool True", "b: True", kindsOK{B: true}},
		{"bool false", "b: false", kindsOK{}},
		{"int", "i: -42", kindsOK{I: -42}},
		{"int hex", "i: 0x1F", kindsOK{I: 31}},
		{"int octal", "i: 0o17", kindsOK{I: 15}},
		{"int underscores", "i: 1_000", kindsOK{I: 1000}},
		{"int8 min", "i8: -128", kindsOK{I8: -128}},
		{"int8 max", "i8: 127", kindsOK{I8: 127}},
		{"int16", "i16: -32768", kindsOK{I16: -32768}},
		{"int32", "i32: 2147483647", kindsOK{I32: 2147483647}},
		{"int64 min", "i64: -9223372036854775808", kindsOK{I64: math.MinInt64}},
		{"uint", "u: 7", kindsOK{U: 7}},
		{"uint8 max", "u8: 255", kindsOK{U8: 255}},
		{"uint16", "u16: 65535", kindsOK{U16: 65535}},
		{"uint32", "u32: 4294967295", kindsOK{U32: math.MaxUint32}},
		{"uint64 max", "u64: 18446744073709551615", kindsOK{U64: math.MaxUint64}},
		{"float", "f64: 1.5", kindsOK{F64: 1.5}},
		{"float from int", "f64: 2", kindsOK{F64: 2}},
		{"float exponent", "f64: 1e3", kindsOK{F64: 1000}},
		{"float inf", "f64: -.inf", kindsOK{F64: math.Inf(-1)}},
		{"float32", "f32: -0.25", kindsOK{F32: -0.25}},
		{"duration", "d: 30s", kindsOK{D: 30 * time.Second}},
		{"duration compound", "d: 1h30m", kindsOK{D: 90 * time.Minute}},
		{"duration quoted", `d: "500ms"`, kindsOK{D: 500 * time.Millisecond}},
		{"duration zero", "d: 0", kindsOK{}},
		{"flow list", "l: [a, b]", kindsOK{L: []string{"a", "b"}}},
		{"block list", "l:\n  - a\n  - b\n", kindsOK{L: []string{"a", "b"}}},
		{"empty list", "l: []", kindsOK{L: []string{}}},
		{"null list", "l: ~", kindsOK{}},
		{"nested list", "ll: [[1, 2], [], [3]]", kindsOK{LL: [][]int{{1, 2}, {}, {3}}}},
		{"array", "a: [1, 2]", kindsOK{A: [2]int{1, 2}}},
		{"map", "m: {x: 1, y: 2}", kindsOK{M: map[string]int{"x": 1, "y": 2}}},
		{"empty map", "m: {}", kindsOK{M: map[string]int{}}},
		{"map with named key type", "ml: {a: true}", kindsOK{ML: map[label]bool{"a": true}}},
		{"pointer", "p: 5", kindsOK{P: ptr(5)}},
		{"pointer null", "p: null", kindsOK{}},
		{"pointer to struct", "ps: {v: 1}", kindsOK{PS: &inner{V: 1}}},
		{"struct", "n:\n  v: 3\n  w: 4\n", kindsOK{N: inner{V: 3, W: 4}}},
		{"any", "any: {a: [1, b, 2.5, true, ~]}", kindsOK{Any: map[string]any{"a": []any{1, "b", 2.5, true, nil}}}},
		{"any scalar", "any: x", kindsOK{Any: "x"}},
		{"text unmarshaler", "t: 192.0.2.1", kindsOK{T: netip.MustParseAddr("192.0.2.1")}},
		{"text unmarshaler pointer", "tp: 10.0.0.0/8", kindsOK{TP: ptr(netip.MustParsePrefix("10.0.0.0/8"))}},
		{"named string", "named: x", kindsOK{Named: "x"}},
		{"tag without name uses lower-cased field name", "lower: x", kindsOK{Lower: "x"}},
		{"inline unexported embedded", "extra: x\nemb: y", kindsOK{common: common{Extra: "x"}, embedded: embedded{Emb: "y"}}},
		{"inline pointer", "deep: 7", kindsOK{Deep: &deep{Deep: 7}}},
		{"alias", "n: &n {v: 1, w: 2}\nps: *n", kindsOK{N: inner{V: 1, W: 2}, PS: &inner{V: 1, W: 2}}},
		{"alias scalar", "s: &s hi\nl: [*s, *s]", kindsOK{S: "hi", L: []string{"hi", "hi"}}},
		{"merge key", "n: &n {v: 1, w: 2}\nps: {<<: *n, w: 3}", kindsOK{N: inner{V: 1, W: 2}, PS: &inner{V: 1, W: 3}}},
		{"merge list, first wins", "n: &n {v: 1}\nm: &m {v: 5, w: 2}\nps: {<<: [*n, *m]}",
			kindsOK{N: inner{V: 1}, M: map[string]int{"v": 5, "w": 2}, PS: &inner{V: 1, W: 2}}},
		{"empty document", "", kindsOK{}},
		{"only comments", "# nothing here\n", kindsOK{}},
		{"document marker only", "---\n", kindsOK{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got kindsOK
			if err := decode(t, tt.src, &got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// kindsOK is kinds with an exported inline pointer instead of an unexported one.
type kindsOK struct {
	S     string         `yaml:"s"`
	B     bool           `yaml:"b"`
	I     int            `yaml:"i"`
	I8    int8           `yaml:"i8"`
	I16   int16          `yaml:"i16"`
	I32   int32          `yaml:"i32"`
	I64   int64          `yaml:"i64"`
	U     uint           `yaml:"u"`
	U8    uint8          `yaml:"u8"`
	U16   uint16         `yaml:"u16"`
	U32   uint32         `yaml:"u32"`
	U64   uint64         `yaml:"u64"`
	F32   float32        `yaml:"f32"`
	F64   float64        `yaml:"f64"`
	D     time.Duration  `yaml:"d"`
	L     []string       `yaml:"l"`
	LL    [][]int        `yaml:"ll"`
	A     [2]int         `yaml:"a"`
	M     map[string]int `yaml:"m"`
	ML    map[label]bool `yaml:"ml"`
	P     *int           `yaml:"p"`
	PS    *inner         `yaml:"ps"`
	N     inner          `yaml:"n"`
	Any   any            `yaml:"any"`
	T     netip.Addr     `yaml:"t"`
	TP    *netip.Prefix  `yaml:"tp"`
	Named label          `yaml:"named"`
	Lower string         `yaml:",omitempty"`

	NoTag string
	Dash  string `yaml:"-"`

	common   `yaml:",inline"`
	Deep     *deep `yaml:",inline"`
	embedded `yaml:",inline"`
}

func TestDecodeNaN(t *testing.T) {
	var got kindsOK
	if err := decode(t, "f64: .nan", &got); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(got.F64) {
		t.Errorf("f64 = %v, want NaN", got.F64)
	}
}

func TestDecodeNodeField(t *testing.T) {
	var got struct {
		Section yaml.Node  `yaml:"section"`
		Ptr     *yaml.Node `yaml:"ptr"`
	}
	if err := decode(t, "section:\n  a: 1\nptr: [x]\n", &got); err != nil {
		t.Fatal(err)
	}
	if got.Section.Kind != yaml.MappingNode || got.Section.Line != 2 || len(got.Section.Content) != 2 {
		t.Errorf("section = %+v, want the mapping at line 2", got.Section)
	}
	if got.Ptr == nil || got.Ptr.Kind != yaml.SequenceNode {
		t.Errorf("ptr = %+v, want the sequence", got.Ptr)
	}
}

func TestDecodeKeepsDefaults(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want kindsOK
	}{
		{"absent keys keep defaults", "s: x", kindsOK{S: "x", I: 9, N: inner{V: 9}, L: []string{"default"}}},
		{"null section keeps defaults", "n:", kindsOK{S: "default", I: 9, N: inner{V: 9}, L: []string{"default"}}},
		{"null scalar clears", "i: ~\nl: ~", kindsOK{S: "default", N: inner{V: 9}}},
		{"list replaces", "l: [a]", kindsOK{S: "default", I: 9, N: inner{V: 9}, L: []string{"a"}}},
		{"nested keys merge into defaults", "n: {w: 1}", kindsOK{S: "default", I: 9, N: inner{V: 9, W: 1}, L: []string{"default"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kindsOK{S: "default", I: 9, N: inner{V: 9}, L: []string{"default"}}
			if err := decode(t, tt.src, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"bool yes", "b: yes", []string{`config.yaml:1:4: b: expected true or false, got a string "yes"`}},
		{"bool from int", "b: 1", []string{`config.yaml:1:4: b: expected true or false, got an integer "1"`}},
		{"int8 overflow", "i8: 128", []string{`config.yaml:1:5: i8: "128" is out of range for int8`}},
		{"int8 underflow", "i8: -129", []string{`config.yaml:1:5: i8: "-129" is out of range for int8`}},
		{"uint negative", "u8: -1", []string{`config.yaml:1:5: u8: "-1" is out of range for uint8`}},
		{"uint64 overflow", "u64: 18446744073709551616", []string{`config.yaml:1:6: u64: "18446744073709551616" is out of range for uint64`}},
		{"int64 overflow", "i64: 9223372036854775808", []string{`config.yaml:1:6: i64: "9223372036854775808" is out of range for int64`}},
		{"int from float", "i: 1.5", []string{`config.yaml:1:4: i: expected an integer, got a number "1.5"`}},
		{"int from string", "i: abc", []string{`config.yaml:1:4: i: expected an integer, got a string "abc"`}},
		{"int from quoted", `i: "5"`, []string{`config.yaml:1:4: i: expected an integer, got a string "5"`}},
		{"float32 overflow", "f32: 1e39", []string{`config.yaml:1:6: f32: "1e39" is out of range for float32`}},
		{"float from string", "f64: x", []string{`config.yaml:1:6: f64: expected a number, got a string "x"`}},
		{"duration without unit", "d: 30", []string{`config.yaml:1:4: d: duration "30" has no unit: use a unit, e.g. 30s`}},
		{"duration quoted without unit", `d: "15"`, []string{`config.yaml:1:4: d: duration "15" has no unit: use a unit, e.g. 30s`}},
		{"duration garbage", "d: soon", []string{`config.yaml:1:4: d: invalid duration "soon": use a number with a unit, e.g. 30s, 1h30m, 500ms`}},
		{"duration list", "d: [1s]", []string{`config.yaml:1:4: d: expected a duration such as 30s, got a list`}},
		{"list from scalar", "l: a", []string{`config.yaml:1:4: l: expected a list, got a string "a"`}},
		{"list from block mapping points at key", "l:\n  x: 1\n", []string{`config.yaml:1:1: l: expected a list, got a mapping`}},
		{"list item wrong", "ll: [[1], x]", []string{`config.yaml:1:11: ll[1]: expected a list, got a string "x"`}},
		{"array length", "a: [1]", []string{`config.yaml:1:4: a: expected a list of 2, got 1`}},
		{"map from list", "m: [1]", []string{`config.yaml:1:4: m: expected a mapping, got a list`}},
		{"map value wrong", "m: {a: x}", []string{`config.yaml:1:8: m.a: expected an integer, got a string "x"`}},
		{"struct from scalar", "n: 5", []string{`config.yaml:1:4: n: expected a mapping, got an integer "5"`}},
		{"string from list", "s: [a]", []string{`config.yaml:1:4: s: expected a string, got a list`}},
		{"text unmarshaler error", "t: nope", []string{`config.yaml:1:4: t: ParseAddr("nope"): unable to parse IP`}},
		{"text unmarshaler from mapping", "t: {a: 1}", []string{`config.yaml:1:4: t: expected a string, got a mapping`}},
		{"unknown key", "s: x\nz: 1\n", []string{`config.yaml:2:1: unknown key "z" at the top level`}},
		{"unknown key suggestion", "nemed: x\n", []string{`config.yaml:1:1: unknown key "nemed" at the top level; did you mean "named"?`}},
		{"unknown nested key", "n:\n  v: 1\n  x: 2\n", []string{`config.yaml:3:3: unknown key "x" in n`}},
		{"untagged field is not a key", "notag: x", []string{`config.yaml:1:1: unknown key "notag" at the top level`}},
		{"dash field is not a key", "dash: x", []string{`config.yaml:1:1: unknown key "dash" at the top level`}},
		{"duplicate key", "s: a\ns: b\n", []string{`config.yaml:2:1: duplicate key "s" at the top level (first at line 1, column 1)`}},
		{"duplicate map key", "m:\n  a: 1\n  a: 2\n", []string{`config.yaml:3:3: duplicate key "a" in m (first at line 2, column 3)`}},
		{"non-scalar key", "m: {[a]: 1}", []string{`config.yaml:1:5: keys must be scalars, got a list in m`}},
		{"self-referencing alias", "ll: &a [*a]", []string{`config.yaml:1:9: ll[0][0]: alias *a refers to a node that contains it`}},
		{"bad merge value", "ps: {<<: 1}", []string{`config.yaml:1:10: merge key << needs a mapping or a list of mappings, got an integer`}},
		{"self-merge", "ps: &p {v: 1, <<: *p}", []string{`config.yaml:1:19: merge key << refers to a mapping that contains it`}},
		{"any with duplicate key", "any: {a: 1, a: 2}", []string{`config.yaml:1:6: any: line 1: mapping key "a" already defined at line 1`}},
		{
			"several errors in document order",
			"b: yes\nn:\n  v: x\n  q: 1\nl: a\nb: true\n",
			[]string{
				`config.yaml:1:4: b: expected true or false, got a string "yes"`,
				`config.yaml:3:6: n.v: expected an integer, got a string "x"`,
				`config.yaml:4:3: unknown key "q" in n`,
				`config.yaml:5:4: l: expected a list, got a string "a"`,
				`config.yaml:6:1: duplicate key "b" at the top level (first at line 1, column 1)`,
			},
		},
		{
			"error inside aliased node points at the anchor",
			"n: &n {v: x}\nps: *n\n",
			[]string{
				`config.yaml:1:11: n.v: expected an integer, got a string "x"`,
				`config.yaml:1:11: ps.v: expected an integer, got a string "x"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got kindsOK
			err := decode(t, tt.src, &got)
			if gotErrs := errorStrings(t, err); !reflect.DeepEqual(gotErrs, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(gotErrs, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Types shaped like frontdoor's config sections.
type testConfig struct {
	Server    testServer              `yaml:"server"`
	Roles     map[string]testRole     `yaml:"roles"`
	Upstreams map[string]testUpstream `yaml:"upstreams"`
	Routes    []testRoute             `yaml:"routes"`
}

type testServer struct {
	Listen         string         `yaml:"listen"`
	ShutdownGrace  time.Duration  `yaml:"shutdown_grace"`
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
}

type testRole struct {
	Inherits     []string `yaml:"inherits"`
	Capabilities []string `yaml:"capabilities"`
}

type testUpstream struct {
	URLs    []string      `yaml:"urls"`
	Timeout time.Duration `yaml:"timeout"`
}

type testRoute struct {
	Name    string   `yaml:"name"`
	Path    string   `yaml:"path"`
	Methods []string `yaml:"methods"`
	Roles   []string `yaml:"roles"`
}

const sampleConfig = `server:
  listen: ":8080"
  shutdown_grace: 20s
roles:
  author: { capabilities: [publish] }
  editor:
    inherits: [author, contributor]
upstreams:
  legacy:
    urls: ["http://127.0.0.1:9000"]
  a.b:
    urls:
      - http://x
routes:
  - name: read
    path: /api/**
  - name: write
    path: /api/x
    methods: [POST, PUT]
`

func TestDecodeConfig(t *testing.T) {
	var got testConfig
	if err := decode(t, sampleConfig, &got); err != nil {
		t.Fatal(err)
	}
	want := testConfig{
		Server: testServer{Listen: ":8080", ShutdownGrace: 20 * time.Second},
		Roles: map[string]testRole{
			"author": {Capabilities: []string{"publish"}},
			"editor": {Inherits: []string{"author", "contributor"}},
		},
		Upstreams: map[string]testUpstream{
			"legacy": {URLs: []string{"http://127.0.0.1:9000"}},
			"a.b":    {URLs: []string{"http://x"}},
		},
		Routes: []testRoute{
			{Name: "read", Path: "/api/**"},
			{Name: "write", Path: "/api/x", Methods: []string{"POST", "PUT"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	src := `server:
  listen: ":8080"
  lisen: ":9090"
routes:
  - name: a
    path: /a
  - name: b
    pth: /b
    methods: GET
`
	var got testConfig
	err := decode(t, src, &got)
	want := []string{
		`config.yaml:3:3: unknown key "lisen" in server; did you mean "listen"?`,
		`config.yaml:8:5: unknown key "pth" in routes[1]; did you mean "path"?`,
		`config.yaml:9:14: routes[1].methods: expected a list, got a string "GET"`,
	}
	if gotErrs := errorStrings(t, err); !reflect.DeepEqual(gotErrs, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(gotErrs, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeTooManyErrors(t *testing.T) {
	var src strings.Builder
	for i := range 150 {
		fmt.Fprintf(&src, "k%d: 1\n", i)
	}
	var got kindsOK
	errs := errorStrings(t, decode(t, src.String(), &got))
	if len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), maxErrors+1)
	}
	if last := errs[len(errs)-1]; last != "config.yaml: too many errors; stopped after 100" {
		t.Errorf("last error = %q", last)
	}
}

func TestDecodeBadTarget(t *testing.T) {
	type unexportedField struct {
		x string `yaml:"x"`
	}
	type twice struct {
		A string `yaml:"a"`
		B string `yaml:"a"`
	}
	type inlineScalar struct {
		A string `yaml:",inline"`
	}
	type chanField struct {
		C chan int `yaml:"c"`
	}
	type intKeys struct {
		M map[int]string `yaml:"m"`
	}
	tests := []struct {
		name string
		src  string
		out  any
		want string
	}{
		{"nil", "", nil, "config.yaml: yamlconf: Decode needs a non-nil pointer to a struct, got <nil>"},
		{"not a pointer", "", kindsOK{}, "config.yaml: yamlconf: Decode needs a non-nil pointer to a struct, got yamlconf.kindsOK"},
		{"pointer to non-struct", "", new(int), "config.yaml: yamlconf: Decode needs a non-nil pointer to a struct, got *int"},
		{"unexported tagged field", "x: 1", &unexportedField{}, "config.yaml:1:1: yamlconf: cannot decode into yamlconf.unexportedField: field x has a yaml tag but is not exported"},
		{"two fields one key", "a: 1", &twice{}, `config.yaml:1:1: yamlconf: cannot decode into yamlconf.twice: key "a" belongs to two fields`},
		{"inline scalar", "a: 1", &inlineScalar{}, "config.yaml:1:1: yamlconf: cannot decode into yamlconf.inlineScalar: field A: inline needs a struct or a pointer to one"},
		{"unexported inline pointer", "s: 1", &kinds{}, "config.yaml:1:1: yamlconf: cannot decode into yamlconf.kinds: field deep: inline field is not exported"},
		{"channel", "c: 1", &chanField{}, "config.yaml:1:4: c: yamlconf: cannot decode into Go type chan int"},
		{"int map keys", "m: {1: a}", &intKeys{}, "config.yaml:1:4: m: yamlconf: cannot decode into Go type map[int]string: map keys must be strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("config.yaml", []byte(tt.src), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := errorStrings(t, doc.Decode(tt.out))
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAliasBomb(t *testing.T) {
	const bomb = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	// One target decodes the bomb with this package's reflection, the
	// other hands it to yaml.v3 through an interface field.
	var typed struct {
		A []string                       `yaml:"a"`
		B [][]string                     `yaml:"b"`
		C [][][]string                   `yaml:"c"`
		D [][][][]string                 `yaml:"d"`
		E [][][][][]string               `yaml:"e"`
		F [][][][][][]string             `yaml:"f"`
		G [][][][][][][]string           `yaml:"g"`
		H [][][][][][][][]string         `yaml:"h"`
		I [][][][][][][][][]string       `yaml:"i"`
		J [][][][][][][][][][]string     `yaml:"j"`
		K [][][][][][][][][][][]string   `yaml:"k"`
		L [][][][][][][][][][][][]string `yaml:"l"`
	}
	var untyped struct {
		A any `yaml:"a"`
		B any `yaml:"b"`
		C any `yaml:"c"`
		D any `yaml:"d"`
		E any `yaml:"e"`
		F any `yaml:"f"`
		G any `yaml:"g"`
		H any `yaml:"h"`
		I any `yaml:"i"`
	}
	const tooLarge = "the document is too large: more than 1000000 nodes once aliases are expanded"
	tests := []struct {
		name string
		out  any
		want []string // every error must contain one of these
	}{
		{"typed", &typed, []string{tooLarge}},
		// yaml.v3 may refuse an interface field's share of the bomb with
		// its own alias check before this package's budget runs out.
		{"interface", &untyped, []string{tooLarge, "document contains excessive aliasing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("config.yaml", []byte(bomb), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := errorStrings(t, doc.Decode(tt.out))
			if len(got) == 0 {
				t.Fatal("the alias bomb was decoded")
			}
			for _, e := range got {
				if !slices.ContainsFunc(tt.want, func(w string) bool { return strings.Contains(e, w) }) {
					t.Errorf("unexpected error %q", e)
				}
			}
		})
	}
}

func TestMergeBomb(t *testing.T) {
	var src strings.Builder
	src.WriteString("x0: &x0 {v: 1}\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&src, "x%d: &x%d {<<: [*x%d, *x%d, *x%d]}\n", i, i, i-1, i-1, i-1)
	}
	src.WriteString("ps: *x30\n")
	doc, err := Parse("config.yaml", []byte(src.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		PS inner `yaml:"ps"`
	}
	got := strings.Join(errorStrings(t, doc.Decode(&out)), "\n")
	if !strings.Contains(got, "too large") {
		t.Errorf("errors = %q, want the document refused as too large", got)
	}
}

func TestEnv(t *testing.T) {
	vars := map[string]string{
		"SECRET":  "s3cr3t-value",
		"EMPTY":   "",
		"PORT":    "8080",
		"FLAG":    "true",
		"PW":      "hunter22",
		"TIMEOUT": "thirty-seconds",
		"NAME":    "k",
	}
	tests := []struct {
		name    string
		src     string
		want    kindsOK
		wantErr []string
	}{
		{name: "set", src: `s: "${SECRET}"`, want: kindsOK{S: "s3cr3t-value"}},
		{name: "plain", src: `s: ${SECRET}`, want: kindsOK{S: "s3cr3t-value"}},
		{name: "inside a longer string", src: `s: "postgres://u:${PW}@db/x?a=${NAME}"`, want: kindsOK{S: "postgres://u:hunter22@db/x?a=k"}},
		{name: "default when unset", src: `s: ${MISSING:-fallback}`, want: kindsOK{S: "fallback"}},
		{name: "default when empty", src: `s: ${EMPTY:-fallback}`, want: kindsOK{S: "fallback"}},
		{name: "default ignored when set", src: `s: ${NAME:-fallback}`, want: kindsOK{S: "k"}},
		{name: "empty default", src: `s: "${MISSING:-}"`, want: kindsOK{}},
		{name: "set but empty", src: `s: "${EMPTY}"`, want: kindsOK{}},
		{name: "escape", src: `s: "$${HOME} costs $5"`, want: kindsOK{S: "${HOME} costs $5"}},
		{name: "in list", src: `l: ["${NAME}", x]`, want: kindsOK{L: []string{"k", "x"}}},
		{name: "no expansion in keys", src: `m: {"${NAME}": 1}`, want: kindsOK{M: map[string]int{"${NAME}": 1}}},
		{name: "plain scalar retyped: int", src: `i: ${PORT}`, want: kindsOK{I: 8080}},
		{name: "plain scalar retyped: bool", src: `b: ${FLAG}`, want: kindsOK{B: true}},
		{name: "plain scalar retyped: null", src: `p: ${MISSING:-}`, want: kindsOK{}},
		{name: "quoted scalar stays a string", src: `i: "${PORT}"`,
			wantErr: []string{`config.yaml:1:4: i: expected an integer, got a string "${PORT}" (after expansion)`}},
		{name: "unset", src: "s: ok\nl:\n  - \"${MISSING}\"\n",
			wantErr: []string{`config.yaml:3:5: l[0]: environment variable MISSING is not set`}},
		{name: "several unset", src: "s: ${A1}-${A2}\nn:\n  v: ${A3}\n",
			wantErr: []string{
				`config.yaml:1:4: s: environment variable A1 is not set`,
				`config.yaml:1:4: s: environment variable A2 is not set`,
				`config.yaml:3:6: n.v: environment variable A3 is not set`,
			}},
		{name: "unterminated", src: `s: "${NAME"`,
			wantErr: []string{`config.yaml:1:4: s: unterminated "${" (write "$${" for a literal "${")`}},
		{name: "invalid name", src: `s: "${1X}"`,
			wantErr: []string{`config.yaml:1:4: s: invalid variable reference ${1X}: use ${NAME} or ${NAME:-default}`}},
		{name: "shell default syntax without colon", src: `s: "${X-y}"`,
			wantErr: []string{`config.yaml:1:4: s: invalid variable reference ${X-y}: use ${NAME} or ${NAME:-default}`}},
		{name: "decode error does not show the value", src: `d: ${TIMEOUT}`,
			wantErr: []string{`config.yaml:1:4: d: invalid duration "${TIMEOUT}" (after expansion): use a number with a unit, e.g. 30s, 1h30m, 500ms`}},
		{name: "foreign error does not show the value", src: `t: ${SECRET}`,
			wantErr: []string{`config.yaml:1:4: t: ParseAddr("${SECRET}"): unable to parse IP`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got kindsOK
			doc, err := Parse("config.yaml", []byte(tt.src), env(vars))
			if err == nil {
				err = doc.Decode(&got)
			}
			gotErrs := errorStrings(t, err)
			if !reflect.DeepEqual(gotErrs, tt.wantErr) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(gotErrs, "\n"), strings.Join(tt.wantErr, "\n"))
			}
			for _, e := range gotErrs {
				for _, secret := range []string{"s3cr3t-value", "hunter22", "thirty-seconds"} {
					if strings.Contains(e, secret) {
						t.Errorf("error %q reveals an environment value", e)
					}
				}
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"bad indentation", "server:\n  listen: x\n   bad: 1\n", "config.yaml:3: mapping values are not allowed in this context"},
		{"unclosed flow list", "a: [1, 2\nb: 3\n", "config.yaml:1: did not find expected ',' or ']'"},
		{"unknown anchor", "a: *nope\n", "config.yaml: unknown anchor 'nope' referenced"},
		{"two documents", "a: 1\n---\nb: 2\n", "config.yaml:2:1: a second YAML document; the file must hold exactly one"},
		{"top level list", "- a\n- b\n", "config.yaml:1:1: the top level must be a mapping of keys, got a list"},
		{"top level scalar", "hello\n", `config.yaml:1:1: the top level must be a mapping of keys, got a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("config.yaml", []byte(tt.src), nil)
			if doc != nil {
				t.Errorf("Parse returned a document with error %v", err)
			}
			if got := errorStrings(t, err); len(got) != 1 || got[0] != tt.want {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPosition(t *testing.T) {
	doc, err := Parse("config.yaml", []byte(sampleConfig+"tests:\n  - &t {name: x}\n  - {<<: *t, path: /y}\n  - *t\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		line, col int
	}{
		{"", 1, 1},
		{"server", 1, 1},                 // block mapping: the key
		{"server.listen", 2, 11},         // scalar: the value
		{"server.shutdown_grace", 3, 19}, //
		{"server.nope", 1, 1},            // missing: deepest ancestor
		{"server.listen.deeper", 2, 11},  // below a scalar
		{"roles.author", 5, 11},          // flow mapping: the value
		{"roles.author.capabilities[0]", 5, 28},
		{"roles.editor.inherits[1]", 7, 24},
		{"roles.editor.inherits[2]", 7, 15}, // index out of range
		{"upstreams.legacy.urls[0]", 10, 12},
		{"upstreams.a.b.urls[0]", 13, 9}, // key containing a dot
		{"upstreams.a.b.urls", 12, 5},
		{"upstreams.a", 8, 1}, // "a" is not a key: "a.b" is
		{"routes", 14, 1},
		{"routes[0]", 15, 5},
		{"routes[1].methods[1]", 19, 21},
		{"routes[1].name", 17, 11},
		{"routes[2]", 14, 1},
		{"routes[x]", 14, 1},
		{"routes.name", 14, 1},
		{"tests[1].name", 21, 15}, // through a merge key: the anchored value
		{"tests[1].path", 22, 20}, //
		{"tests[2]", 23, 5},       // an alias: the alias
		{"tests[2].name", 21, 15}, // through an alias
		{"nope.deeper[3]", 1, 1},  // unknown top-level key: the root
	}
	for _, tt := range tests {
		if line, col := doc.Position(tt.path); line != tt.line || col != tt.col {
			t.Errorf("Position(%q) = %d:%d, want %d:%d", tt.path, line, col, tt.line, tt.col)
		}
	}

	empty, err := Parse("config.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if line, col := empty.Position("server.listen"); line != 0 || col != 0 {
		t.Errorf("Position in an empty file = %d:%d, want 0:0", line, col)
	}
}

// pathErr carries a path without being a PathError, as another package's
// error type would.
type pathErr struct{ path, msg string }

func (e pathErr) Error() string      { return e.path + " " + e.msg }
func (e pathErr) ConfigPath() string { return e.path }

func TestLocate(t *testing.T) {
	// The added last line only gives Locate an environment value to mask.
	doc, err := Parse("config.yaml", []byte(sampleConfig+"secret: ${PW}\n"), env(map[string]string{"PW": "hunter22"}))
	if err != nil {
		t.Fatal(err)
	}
	decodeErr := &Error{File: "config.yaml", Line: 4, Column: 1, Msg: "from Decode"}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"one path error", &PathError{Path: "server.listen", Msg: "bad address"},
			[]string{`config.yaml:2:11: server.listen: bad address`}},
		{
			"joined: two path errors and a plain one",
			errors.Join(
				&PathError{Path: "routes[1].path", Msg: "overlaps routes[0]"},
				pathErr{path: "roles.editor.inherits[1]", msg: "is not defined"},
				errors.New("no routes allow /auth"),
			),
			[]string{
				`config.yaml:18:11: routes[1].path: overlaps routes[0]`,
				`config.yaml:7:24: roles.editor.inherits[1] is not defined`,
				`config.yaml: no routes allow /auth`,
			},
		},
		{"wrapped path error keeps the wrapper's text", fmt.Errorf("policy: %w", &PathError{Path: "routes[0]", Msg: "x"}),
			[]string{`config.yaml:15:5: policy: routes[0]: x`}},
		{
			"wrapped join is split, keeping the prefix",
			fmt.Errorf("policy: %w", errors.Join(&PathError{Path: "routes[0].name", Msg: "a"}, &PathError{Path: "routes[9]", Msg: "b"})),
			[]string{`config.yaml:15:11: policy: routes[0].name: a`, `config.yaml:14:1: policy: routes[9]: b`},
		},
		{"missing path: deepest ancestor", &PathError{Path: "server.tls.cert", Msg: "required"},
			[]string{`config.yaml:1:1: server.tls.cert: required`}},
		{"empty path", &PathError{Msg: "no upstreams"}, []string{`config.yaml:1:1: no upstreams`}},
		{"already located", errors.Join(decodeErr), []string{`config.yaml:4:1: from Decode`}},
		{"wrapped *Error", fmt.Errorf("loading: %w", decodeErr), []string{`config.yaml:4:1: loading: from Decode`}},
		{"environment value masked", &PathError{Path: "server.listen", Msg: `cannot reach "hunter22"`},
			[]string{`config.yaml:2:11: server.listen: cannot reach "${PW}"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := doc.Locate(tt.err)
			if gotErrs := errorStrings(t, got); !reflect.DeepEqual(gotErrs, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(gotErrs, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(tt.want) > 1 {
				if _, ok := got.(interface{ Unwrap() []error }); !ok {
					t.Errorf("Locate returned %T, want a joined error", got)
				}
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "config.yaml", Line: 12, Column: 5, Msg: "m"}, "config.yaml:12:5: m"},
		{Error{File: "config.yaml", Line: 12, Msg: "m"}, "config.yaml:12: m"},
		{Error{File: "config.yaml", Msg: "m"}, "config.yaml: m"},
		{Error{Msg: "m"}, "m"},
		{Error{Line: 3, Column: 4, Msg: "m"}, ":3:4: m"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
	if got := (&PathError{Path: "a.b", Msg: "m"}).Error(); got != "a.b: m" {
		t.Errorf("PathError.Error() = %q", got)
	}
}

func TestDocumentAccessors(t *testing.T) {
	doc, err := Parse("conf/x.yaml", []byte("a: ${V}\n"), env(map[string]string{"V": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if doc.File() != "conf/x.yaml" {
		t.Errorf("File() = %q", doc.File())
	}
	root := doc.Root()
	if root.Kind != yaml.MappingNode || len(root.Content) != 2 || root.Content[1].Value != "1" || root.Content[1].ShortTag() != "!!int" {
		t.Errorf("Root() = %+v, want the expanded mapping", root)
	}
}

// TestConcurrentUse backs the promise that a Document may be shared: run it
// with -race.
func TestConcurrentUse(t *testing.T) {
	doc, err := Parse("config.yaml", []byte(sampleConfig+"secret: ${PW}\n"), env(map[string]string{"PW": "hunter22"}))
	if err != nil {
		t.Fatal(err)
	}
	var want testConfig
	if err := doc.Decode(&want); !strings.Contains(fmt.Sprint(err), `unknown key "secret"`) {
		t.Fatalf("Decode: %v", err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var got testConfig
			doc.Decode(&got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("concurrent Decode got %+v, want %+v", got, want)
			}
			if line, col := doc.Position("routes[1].path"); line != 18 || col != 11 {
				t.Errorf("concurrent Position = %d:%d", line, col)
			}
			doc.Locate(&PathError{Path: "server.listen", Msg: "hunter22"})
		})
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		sampleConfig,
		"server: {listen: ${X:-:80}, shutdown_grace: 5s}\n",
		"routes:\n  - &r {name: a, methods: [GET]}\n  - {<<: *r, path: /x}\n  - *r\n",
		"a: &a [*a]\n",
		"roles: {x: {inherits: [y]}}\nupstreams: {u: {urls: [a], timeout: 0}}\n",
		"server:\n  listen: x\n   bad: 1\n",
		"? [a]\n: b\n",
		"$${",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse("fuzz.yaml", data, env(map[string]string{"X": "1"}))
		if err != nil {
			errorStrings(t, err)
			return
		}
		var cfg testConfig
		errorStrings(t, doc.Decode(&cfg))
		var k kindsOK
		errorStrings(t, doc.Decode(&k))
		doc.Position("routes[0].methods[1]")
		doc.Position("upstreams.legacy.urls[0]")
		errorStrings(t, doc.Locate(errors.Join(&PathError{Path: "roles.x.inherits[0]", Msg: "m"}, errors.New("e"))))
	})
}
