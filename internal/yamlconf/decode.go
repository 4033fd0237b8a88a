package yamlconf

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	// maxNodes caps the nodes one Decode visits, counting every expansion of
	// an alias, so that a small file of nested aliases ("billion laughs")
	// cannot make it run for ever.
	maxNodes = 1_000_000
	// maxDepth caps nesting, which aliases and recursive Go types could
	// otherwise deepen beyond what the YAML parser allows.
	maxDepth = 10_000
	// maxErrors stops a hopeless file from producing an unbounded report.
	maxErrors = 100
)

var (
	nodeType            = reflect.TypeFor[yaml.Node]()
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// Decode binds the document into out, which must be a non-nil pointer to a
// struct. Struct fields are matched by their `yaml:"name"` tag, exactly;
// fields without a yaml tag, or tagged "-", are not configuration. A field
// tagged `yaml:",inline"` (a struct or pointer to struct) contributes its keys
// to the parent mapping. Keys that match no field, duplicate keys and values of
// the wrong kind are errors at their position.
//
// Supported field types: string (any scalar; null is ""), bool (true or false
// only), every int and uint kind (range-checked), float32 and float64,
// time.Duration (Go syntax such as "30s" or "1h30m"; the only bare number
// allowed is 0), slices (from a list), arrays (from a list of that length),
// maps with string keys, pointers, structs, yaml.Node (the node itself), the
// empty interface (decoded by yaml.v3) and any type whose pointer implements
// encoding.TextUnmarshaler (given the scalar's text). Null leaves a struct as
// it was and sets anything else to its zero value. Anchors, aliases and merge
// keys ("<<") are resolved.
//
// Decode reports every error it finds, up to a limit, in document order: a
// lone *Error or an errors.Join of *Error.
func (d *Document) Decode(out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return &Error{File: d.file, Msg: fmt.Sprintf("yamlconf: Decode needs a non-nil pointer to a struct, got %T", out)}
	}
	dec := &decoder{walker: newWalker(maxNodes), doc: d, types: map[reflect.Type]*structInfo{}}
	dec.value(d.root, d.root, "", rv.Elem(), 0)
	if dec.exhausted {
		dec.tooLarge(nil)
	}
	return joinErrors(sortErrors(dec.errs))
}

type decoder struct {
	*walker
	doc   *Document
	types map[reflect.Type]*structInfo // fields of struct types, computed once per Decode

	errs           []*Error
	full           bool // maxErrors reached: stop decoding
	saidTooLarge   bool
	saidTooDeep    bool
	reportedStruct map[reflect.Type]bool
}

func (d *decoder) errorf(at *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.add(at, msg)
}

func (d *decoder) add(at *yaml.Node, msg string) {
	if d.full {
		return
	}
	if len(d.errs) == maxErrors {
		d.full = true
		d.errs = append(d.errs, &Error{File: d.doc.file, Msg: fmt.Sprintf("too many errors; stopped after %d", maxErrors)})
		return
	}
	e := &Error{File: d.doc.file, Msg: msg}
	if at != nil {
		e.Line, e.Column = at.Line, at.Column
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) tooLarge(at *yaml.Node) {
	if !d.saidTooLarge {
		d.saidTooLarge = true
		d.add(at, fmt.Sprintf("the document is too large: more than %d nodes once aliases are expanded", maxNodes))
	}
}

// value decodes n into v. at is where to point when n as a whole is wrong,
// which for an alias is the alias, not the anchored node it stands for.
func (d *decoder) value(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	if d.full || d.exhausted {
		return
	}
	if !d.visit() {
		d.tooLarge(at)
		return
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			d.errorf(at, path, "alias *%s has no anchor", truncate(n.Value))
			return
		}
		if d.active[target] {
			d.errorf(n, path, "alias *%s refers to a node that contains it", truncate(n.Value))
			return
		}
		d.active[target] = true
		d.value(target, at, path, v, depth+1)
		delete(d.active, target)
		return
	}
	d.assign(n, at, path, v, depth)
}

// assign decodes the non-alias node n into v.
func (d *decoder) assign(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	if depth > maxDepth {
		if !d.saidTooDeep {
			d.saidTooDeep = true
			d.errorf(at, path, "nested more than %d levels deep", maxDepth)
		}
		return
	}
	t := v.Type()
	if t == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// An empty section ("server:" with everything below commented out)
		// keeps the defaults the caller put in the struct.
		if v.Kind() != reflect.Struct {
			v.SetZero()
		}
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.assign(n, at, path, v.Elem(), depth+1)
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) && v.CanAddr() {
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, at, path, "a string")
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(at, path, "%s", d.foreign(n, err.Error()))
		}
		return
	}
	if t == durationType {
		d.duration(n, at, path, v)
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, at, path, "a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		d.boolean(n, at, path, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.integer(n, at, path, v)
	case reflect.Float32, reflect.Float64:
		d.float(n, at, path, v)
	case reflect.Struct:
		d.structValue(n, at, path, v, depth)
	case reflect.Map:
		d.mapValue(n, at, path, v, depth)
	case reflect.Slice:
		d.sliceValue(n, at, path, v, depth)
	case reflect.Array:
		d.arrayValue(n, at, path, v, depth)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.errorf(at, path, "yamlconf: cannot decode into Go type %s", t)
			return
		}
		d.anyValue(n, at, path, v, depth)
	default:
		d.errorf(at, path, "yamlconf: cannot decode into Go type %s", t)
	}
}

// mismatch reports a node of the wrong kind.
func (d *decoder) mismatch(n, at *yaml.Node, path, want string) {
	got := kindName(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		got += " " + d.show(n)
	}
	d.errorf(at, path, "expected %s, got %s", want, got)
}

// show quotes a scalar for a message. A value that came from the environment
// is shown as written in the file, since it may be a secret.
func (d *decoder) show(n *yaml.Node) string {
	if orig, ok := d.doc.original[n]; ok {
		return strconv.Quote(truncate(orig)) + " (after expansion)"
	}
	return strconv.Quote(truncate(n.Value))
}

// foreign cleans a message composed by other code (a TextUnmarshaler, yaml.v3)
// that may quote the value of n.
func (d *decoder) foreign(n *yaml.Node, msg string) string {
	if orig, ok := d.doc.original[n]; ok && n.Value != "" {
		msg = strings.ReplaceAll(msg, n.Value, orig)
	}
	return d.doc.mask(msg)
}

func (d *decoder) boolean(n, at *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		switch strings.ToLower(n.Value) {
		case "true":
			v.SetBool(true)
			return
		case "false":
			v.SetBool(false)
			return
		}
	}
	d.mismatch(n, at, path, "true or false")
}

// parseInt reads an integer scalar as YAML does (decimal, 0x, 0o, 0b, legacy
// leading-0 octal, "_" separators), without limit, so that range errors can
// say what overflowed. Integers too large for 64 bits resolve as floats in
// yaml.v3, hence the !!float case.
func parseInt(n *yaml.Node) (*big.Int, bool) {
	if n.Kind != yaml.ScalarNode {
		return nil, false
	}
	if tag := n.ShortTag(); tag != "!!int" && tag != "!!float" {
		return nil, false
	}
	return new(big.Int).SetString(strings.ReplaceAll(n.Value, "_", ""), 0)
}

func (d *decoder) integer(n, at *yaml.Node, path string, v reflect.Value) {
	i, ok := parseInt(n)
	if !ok {
		d.mismatch(n, at, path, "an integer")
		return
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i.IsInt64() && !v.OverflowInt(i.Int64()) {
			v.SetInt(i.Int64())
			return
		}
	default:
		if i.IsUint64() && !v.OverflowUint(i.Uint64()) {
			v.SetUint(i.Uint64())
			return
		}
	}
	d.errorf(at, path, "%s is out of range for %s", d.show(n), v.Kind())
}

// parseFloat reads a numeric scalar, including YAML's .inf and .nan.
func parseFloat(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		i, ok := parseInt(n)
		if !ok {
			return 0, false
		}
		f, _ := new(big.Float).SetInt(i).Float64()
		return f, true
	case "!!float":
		switch strings.ToLower(n.Value) {
		case ".inf", "+.inf":
			return math.Inf(1), true
		case "-.inf":
			return math.Inf(-1), true
		case ".nan":
			return math.NaN(), true
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		return f, err == nil
	}
	return 0, false
}

func (d *decoder) float(n, at *yaml.Node, path string, v reflect.Value) {
	f, ok := parseFloat(n)
	if !ok {
		d.mismatch(n, at, path, "a number")
		return
	}
	if !math.IsInf(f, 0) && v.OverflowFloat(f) || math.IsInf(f, 0) && !isInfLiteral(n.Value) {
		d.errorf(at, path, "%s is out of range for %s", d.show(n), v.Kind())
		return
	}
	v.SetFloat(f)
}

func isInfLiteral(s string) bool {
	switch strings.ToLower(s) {
	case ".inf", "+.inf", "-.inf":
		return true
	}
	return false
}

func (d *decoder) duration(n, at *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, at, path, "a duration such as 30s")
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err == nil {
		v.SetInt(int64(dur))
		return
	}
	if f, isNumber := parseFloat(&yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}); isNumber {
		if f == 0 {
			v.SetInt(0)
			return
		}
		d.errorf(at, path, "duration %s has no unit: use a unit, e.g. 30s", d.show(n))
		return
	}
	d.errorf(at, path, "invalid duration %s: use a number with a unit, e.g. 30s, 1h30m, 500ms", d.show(n))
}

func (d *decoder) structValue(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, at, path, "a mapping")
		return
	}
	info := d.structInfo(v.Type())
	if info.err != "" {
		if !d.reportedStruct[v.Type()] {
			if d.reportedStruct == nil {
				d.reportedStruct = map[reflect.Type]bool{}
			}
			d.reportedStruct[v.Type()] = true
			d.errorf(at, path, "yamlconf: cannot decode into %s: %s", v.Type(), info.err)
		}
		return
	}
	for _, e := range d.mapEntries(n, where(path), d.add) {
		if d.full || d.exhausted {
			return
		}
		key := deref(e.key).Value
		index, ok := info.fields[key]
		if !ok {
			d.unknownKey(e.key, key, path, info.names)
			continue
		}
		d.value(e.val, errorNode(e.key, e.val), joinKey(path, key), fieldByIndex(v, index), depth+1)
	}
}

func (d *decoder) unknownKey(at *yaml.Node, key, path string, names []string) {
	msg := fmt.Sprintf("unknown key %q%s", truncate(key), where(path))
	if near := closest(key, names); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	d.add(at, msg)
}

// where names the mapping at path for key-related messages.
func where(path string) string {
	if path == "" {
		return " at the top level"
	}
	return " in " + path
}

func (d *decoder) mapValue(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.errorf(at, path, "yamlconf: cannot decode into Go type %s: map keys must be strings", t)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, at, path, "a mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(n.Content)/2))
	}
	for _, e := range d.mapEntries(n, where(path), d.add) {
		if d.full || d.exhausted {
			return
		}
		key := deref(e.key).Value
		elem := reflect.New(t.Elem()).Elem()
		d.value(e.val, errorNode(e.key, e.val), joinKey(path, key), elem, depth+1)
		v.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), elem)
	}
}

func (d *decoder) sliceValue(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, at, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.value(c, c, path+"["+strconv.Itoa(i)+"]", s.Index(i), depth+1)
	}
	v.Set(s)
}

func (d *decoder) arrayValue(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, at, path, fmt.Sprintf("a list of %d", v.Len()))
		return
	}
	if len(n.Content) != v.Len() {
		d.errorf(at, path, "expected a list of %d, got %d", v.Len(), len(n.Content))
		return
	}
	for i, c := range n.Content {
		d.value(c, c, path+"["+strconv.Itoa(i)+"]", v.Index(i), depth+1)
	}
}

// anyValue leaves free-form values to yaml.v3, after checking that expanding
// their aliases stays within the node budget.
func (d *decoder) anyValue(n, at *yaml.Node, path string, v reflect.Value, depth int) {
	if !d.count(n, depth) {
		if d.exhausted {
			d.tooLarge(at)
		} else if !d.saidTooDeep {
			d.saidTooDeep = true
			d.errorf(at, path, "nested more than %d levels deep", maxDepth)
		}
		return
	}
	x, err := decodeAny(n)
	if err != nil {
		d.errorf(at, path, "%s", d.foreign(n, err.Error()))
		return
	}
	if x == nil {
		v.SetZero()
		return
	}
	v.Set(reflect.ValueOf(x))
}

// count visits n and everything it refers to, spending the node budget.
func (d *decoder) count(n *yaml.Node, depth int) bool {
	if depth > maxDepth || !d.visit() {
		return false
	}
	switch n.Kind {
	case yaml.AliasNode:
		t := n.Alias
		if t == nil || d.active[t] {
			return true // yaml.v3 reports the cycle itself
		}
		d.active[t] = true
		ok := d.count(t, depth+1)
		delete(d.active, t)
		return ok
	case yaml.MappingNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if !d.count(c, depth+1) {
				return false
			}
		}
	}
	return true
}

func decodeAny(n *yaml.Node) (x any, err error) {
	defer func() {
		if r := recover(); r != nil {
			x, err = nil, fmt.Errorf("cannot decode: %v", r)
		}
	}()
	if err := n.Decode(&x); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, errors.New(strings.Join(te.Errors, "; "))
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return x, nil
}

// structInfo describes how a struct type's fields are named in YAML.
type structInfo struct {
	fields map[string][]int // key -> field index path, through inline fields
	names  []string         // keys in declaration order, for suggestions
	err    string           // why the type cannot be decoded into
}

func (d *decoder) structInfo(t reflect.Type) *structInfo {
	if si, ok := d.types[t]; ok {
		return si
	}
	si := &structInfo{fields: map[string][]int{}}
	d.types[t] = si
	if err := si.add(t, nil, map[reflect.Type]bool{t: true}); err != nil {
		si.err = err.Error()
	}
	return si
}

func (si *structInfo) add(t reflect.Type, prefix []int, inlining map[reflect.Type]bool) error {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		index := slices.Concat(prefix, []int{i})
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			isPtr := ft.Kind() == reflect.Pointer
			if isPtr {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() != reflect.Struct:
				return fmt.Errorf("field %s: inline needs a struct or a pointer to one", f.Name)
			case !f.IsExported() && (isPtr || !f.Anonymous):
				return fmt.Errorf("field %s: inline field is not exported", f.Name)
			case inlining[ft]:
				return fmt.Errorf("field %s: %s is inlined into itself", f.Name, ft)
			}
			inlining[ft] = true
			if err := si.add(ft, index, inlining); err != nil {
				return err
			}
			delete(inlining, ft)
			continue
		}
		if !f.IsExported() {
			return fmt.Errorf("field %s has a yaml tag but is not exported", f.Name)
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, dup := si.fields[name]; dup {
			return fmt.Errorf("key %q belongs to two fields", name)
		}
		si.fields[name] = index
		si.names = append(si.names, name)
	}
	return nil
}

// fieldByIndex is reflect.Value.FieldByIndex, allocating nil pointers to
// inlined structs on the way.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// closest returns the name nearest to key by edit distance, if it is near
// enough to be a likely typo.
func closest(key string, names []string) string {
	const maxKeyLen = 64 // longer keys are not typos of short names
	if len(key) > maxKeyLen {
		return ""
	}
	best, bestDist := "", 0
	for _, name := range names {
		dist := editDistance(strings.ToLower(key), name)
		if dist > 2 || dist*3 > max(len(key), len(name)) {
			continue
		}
		if best == "" || dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// entry is one key/value pair of a mapping.
type entry struct {
	key, val *yaml.Node
}

// walker bounds the work of following aliases and merge keys.
type walker struct {
	budget    int
	exhausted bool
	active    map[*yaml.Node]bool // anchored nodes being expanded: a cycle guard
}

func newWalker(budget int) *walker {
	return &walker{budget: budget, active: map[*yaml.Node]bool{}}
}

// visit spends one unit of the budget, reporting false when none is left.
func (w *walker) visit() bool {
	if w.budget <= 0 {
		w.exhausted = true
		return false
	}
	w.budget--
	return true
}

// mapEntries lists the pairs of mapping m with YAML merge keys ("<<: *base")
// applied: m's own keys first, in document order, then merged keys that m does
// not set itself; among several merged mappings the earlier one wins.
// Duplicate and non-scalar keys are passed to report (if not nil) and left out.
// where is appended to messages to say which mapping they concern.
func (w *walker) mapEntries(m *yaml.Node, where string, report func(at *yaml.Node, msg string)) []entry {
	if report == nil {
		report = func(*yaml.Node, string) {}
	}
	seen := make(map[string]*yaml.Node, len(m.Content)/2)
	entries := make([]entry, 0, len(m.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kd := deref(k)
		switch {
		case kd.Kind != yaml.ScalarNode:
			report(k, fmt.Sprintf("keys must be scalars, got %s%s", kindName(kd), where))
		case kd.ShortTag() == "!!merge":
			merges = append(merges, v)
		default:
			if first, dup := seen[kd.Value]; dup {
				report(k, fmt.Sprintf("duplicate key %q%s (first at line %d, column %d)",
					truncate(kd.Value), where, first.Line, first.Column))
				continue
			}
			seen[kd.Value] = k
			entries = append(entries, entry{key: k, val: v})
		}
	}
	for _, mv := range merges {
		for _, src := range mergeSources(mv, report) {
			if w.active[src] {
				report(mv, "merge key << refers to a mapping that contains it")
				continue
			}
			if !w.visit() {
				return entries
			}
			w.active[src] = true
			merged := w.mapEntries(src, where, report)
			delete(w.active, src)
			for _, e := range merged {
				if key := deref(e.key).Value; seen[key] == nil {
					seen[key] = e.key
					entries = append(entries, e)
				}
			}
		}
	}
	return entries
}

// mergeSources returns the mappings that the value of a merge key names.
func mergeSources(v *yaml.Node, report func(at *yaml.Node, msg string)) []*yaml.Node {
	switch vd := deref(v); vd.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{vd}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range vd.Content {
			if id := deref(item); id.Kind == yaml.MappingNode {
				out = append(out, id)
			} else {
				report(item, "merge key << needs mappings, got "+kindName(id))
			}
		}
		return out
	default:
		report(v, "merge key << needs a mapping or a list of mappings, got "+kindName(vd))
		return nil
	}
}
