// Package yamlconf parses frontdoor's configuration file strictly and reports
// every problem as file:line:column.
//
// yaml.v3 can decode strictly (KnownFields), but its errors carry only a line
// number and stop at the first problem. This package therefore parses the file
// into a [yaml.Node] tree once, expands ${VAR} references in scalar values, and
// binds the tree into Go structs by reflection itself, so that every error
// points at the exact node and all errors are reported together.
//
// Packages that own a configuration section do not import this package: they
// declare `yaml:"name"` struct tags and return validation errors that carry a
// path (a ConfigPath() string method, such as [PathError]). [Document.Locate]
// turns those paths back into positions in the file.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a configuration error at a position in a file. Line and Column are
// 1-based; a zero Line means the position is unknown, a zero Column that only
// the line is known.
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

// Error formats e as "file:line:column: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// PathError is a validation error about the configuration node at Path, for
// packages that are free to import yamlconf. Any error with a
// ConfigPath() string method works the same way with [Document.Locate].
type PathError struct {
	Path string // for example "routes[2].methods[0]"; see [Document.Position]
	Msg  string
}

// Error returns "path: msg", or just msg when Path is empty.
func (e *PathError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// ConfigPath returns e.Path.
func (e *PathError) ConfigPath() string { return e.Path }

// Document is a parsed YAML file that remembers the position of every node.
// It is not modified after Parse returns, so its methods may be called
// concurrently.
type Document struct {
	file string
	root *yaml.Node // always a mapping

	// original holds the source text of scalars that ${VAR} expansion changed,
	// so that error messages can quote the file rather than the environment.
	original map[*yaml.Node]string
	// secrets are the values substituted from the environment, longest first;
	// they are masked in error messages that this package did not compose.
	secrets []substitution
}

// substitution is one environment value that expansion put into the tree.
type substitution struct {
	name, value string
}

// yamlLineErr matches the syntax errors of yaml.v3, which know only a line.
var yamlLineErr = regexp.MustCompile(`(?s)^yaml: line ([0-9]+): (.*)$`)

// Parse parses data, which must hold at most one YAML document whose top level
// is a mapping; empty data is an empty mapping. ${NAME} in a scalar value (never
// in a key) is replaced by lookup(NAME); ${NAME:-default} falls back to default
// when NAME is unset or empty; "$${" stands for a literal "${". A reference to
// an unset variable is an error at the scalar that contains it. Every error
// returned is an *Error or an errors.Join of *Error.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Document, error) {
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	d := &Document{file: file, root: root, original: map[*yaml.Node]string{}}
	if err := d.expand(lookup); err != nil {
		return nil, err
	}
	return d, nil
}

// parseYAML returns the top-level mapping of data.
func parseYAML(file string, data []byte) (root *yaml.Node, err error) {
	// yaml.v3 recovers only its own failures; a panic on some malformed input
	// must not take the process down during a reload.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, &Error{File: file, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	case err != nil:
		return nil, syntaxError(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, err)
	default:
		return nil, &Error{File: file, Line: next.Line, Column: next.Column,
			Msg: "a second YAML document; the file must hold exactly one"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: file, Msg: "invalid YAML document"}
	}
	root = doc.Content[0]
	switch {
	case root.Kind == yaml.MappingNode:
		return root, nil
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		// A file holding only "---" or comments is as empty as an empty file.
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: root.Line, Column: root.Column}, nil
	}
	return nil, &Error{File: file, Line: root.Line, Column: root.Column,
		Msg: "the top level must be a mapping of keys, got " + kindName(root)}
}

func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, convErr := strconv.Atoi(m[1])
		if convErr == nil {
			return &Error{File: file, Line: line, Msg: m[2]}
		}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// File returns the file name given to Parse.
func (d *Document) File() string { return d.file }

// Root returns the top-level mapping node, after ${VAR} expansion. Callers must
// not modify it. Aliases in it may form cycles; follow Alias with care.
func (d *Document) Root() *yaml.Node { return d.root }

// positionBudget bounds the alias and merge-key expansion done by one Position
// call, which serves only to find a single node.
const positionBudget = 100_000

// Position returns the line and column of the node at path, or of its deepest
// ancestor that exists. A path joins mapping keys with "." and writes sequence
// indexes as "[i]": "routes[2].roles[0]", "upstreams.legacy.urls[0]",
// "server.listen"; "" is the root. A key that itself contains "." or "[" is
// matched as long as it is a key of the mapping at that point. For a key whose
// value is a block mapping or list (or empty) the key's position is returned,
// otherwise the value's. Both are 0 for an empty file.
func (d *Document) Position(path string) (line, col int) {
	w := newWalker(positionBudget)
	n := d.root
	line, col = n.Line, n.Column
	rest := strings.TrimPrefix(path, ".")
	for rest != "" {
		n = deref(n)
		switch {
		case n.Kind == yaml.SequenceNode && rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return line, col
			}
			i, err := strconv.Atoi(rest[1:end])
			if err != nil || i < 0 || i >= len(n.Content) {
				return line, col
			}
			n = n.Content[i]
			line, col = n.Line, n.Column
			rest = rest[end+1:]
		case n.Kind == yaml.MappingNode:
			var best *entry
			for _, e := range w.mapEntries(n, "", nil) {
				k := deref(e.key).Value
				if !strings.HasPrefix(rest, k) || (len(rest) > len(k) && rest[len(k)] != '.' && rest[len(k)] != '[') {
					continue
				}
				if best == nil || len(k) > len(deref(best.key).Value) {
					best = &e
				}
			}
			if best == nil {
				return line, col
			}
			at := errorNode(best.key, best.val)
			line, col = at.Line, at.Column
			n = best.val
			rest = rest[len(deref(best.key).Value):]
		default:
			return line, col
		}
		rest = strings.TrimPrefix(rest, ".")
	}
	return line, col
}

// Locate gives positions to validation errors. Every error in err's tree that
// has a ConfigPath() string method becomes an *Error at [Document.Position] of
// that path, with the error's own text as Msg; an error wrapping one with a
// path keeps its longer text. Errors that are already *Error are kept. Other
// errors become an *Error with no position. Several errors (errors.Join or any
// Unwrap() []error) give an errors.Join of *Error in the same order; one error
// gives a lone *Error; nil gives nil.
//
// Values substituted from the environment are masked in the messages.
func (d *Document) Locate(err error) error {
	if err == nil {
		return nil
	}
	var out []*Error
	d.locate(err, "", &out)
	return joinErrors(out)
}

type configPather interface{ ConfigPath() string }

func (d *Document) locate(err error, prefix string, out *[]*Error) {
	if err == nil {
		return
	}
	switch e := err.(type) {
	case *Error:
		if prefix == "" {
			*out = append(*out, e)
			return
		}
		c := *e
		c.Msg = prefix + c.Msg
		*out = append(*out, &c)
		return
	case configPather:
		line, col := d.Position(e.ConfigPath())
		*out = append(*out, &Error{File: d.file, Line: line, Column: col, Msg: d.mask(prefix + err.Error())})
		return
	case interface{ Unwrap() []error }:
		for _, c := range e.Unwrap() {
			d.locate(c, prefix, out)
		}
		return
	}
	// A wrapper such as fmt.Errorf("policy: %w", inner): look down the chain
	// for the path, or for a list of errors to split.
	for inner := errors.Unwrap(err); inner != nil; inner = errors.Unwrap(inner) {
		switch e := inner.(type) {
		case configPather:
			line, col := d.Position(e.ConfigPath())
			*out = append(*out, &Error{File: d.file, Line: line, Column: col, Msg: d.mask(prefix + err.Error())})
			return
		case *Error:
			// Keep the position, and of the wrapper's text only what it adds.
			p := prefix
			if outer, inner := err.Error(), e.Error(); strings.HasSuffix(outer, inner) {
				p += strings.TrimSuffix(outer, inner)
			}
			*out = append(*out, &Error{File: e.File, Line: e.Line, Column: e.Column, Msg: d.mask(p + e.Msg)})
			return
		case interface{ Unwrap() []error }:
			// Keep the wrapper's own words when they are a plain prefix of the list.
			p := prefix
			if outer, list := err.Error(), inner.Error(); strings.HasSuffix(outer, list) {
				p += strings.TrimSuffix(outer, list)
			}
			for _, c := range e.Unwrap() {
				d.locate(c, p, out)
			}
			return
		}
	}
	*out = append(*out, &Error{File: d.file, Msg: d.mask(prefix + err.Error())})
}

// mask replaces environment values in msg by the reference that produced them.
// Short values are left alone: masking "on" or "80" would garble messages
// while hiding nothing secret.
func (d *Document) mask(msg string) string {
	for _, s := range d.secrets {
		if len(s.value) >= minMaskedLen {
			msg = strings.ReplaceAll(msg, s.value, "${"+s.name+"}")
		}
	}
	return msg
}

const minMaskedLen = 4

// joinErrors returns nil, the only error, or an errors.Join of errs.
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// sortErrors puts errs in document order, errors without a position last, and
// drops exact repeats (an aliased node can fail the same way twice).
func sortErrors(errs []*Error) []*Error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := make(map[Error]bool, len(errs))
	out := errs[:0]
	for _, e := range errs {
		if !seen[*e] {
			seen[*e] = true
			out = append(out, e)
		}
	}
	return out
}

// deref returns the node an alias stands for, or n itself. Anchors sit on
// non-alias nodes, so one step is enough.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// errorNode picks where to point for the value of a mapping entry: at the key
// when the value starts on a later line (a block mapping or list) or is absent,
// else at the value.
func errorNode(key, val *yaml.Node) *yaml.Node {
	switch {
	case (val.Kind == yaml.MappingNode || val.Kind == yaml.SequenceNode) && val.Style&yaml.FlowStyle == 0:
		return key
	case val.Kind == yaml.ScalarNode && val.Value == "" && val.Style == 0 && val.ShortTag() == "!!null":
		return key
	}
	return val
}

// kindName describes a node for "expected X, got Y" messages.
func kindName(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch t := n.ShortTag(); t {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "a timestamp"
		case "!!binary":
			return "binary data"
		case "!!merge":
			return "a merge key (<<)"
		default:
			return "a value tagged " + t
		}
	}
	return "an alias"
}
