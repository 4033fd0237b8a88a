package yamlconf

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// expand replaces ${VAR} references in every scalar value of the tree. Keys are
// left alone: they name configuration, they do not carry it.
func (d *Document) expand(lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	x := &expander{doc: d, lookup: lookup, used: map[string]string{}}
	x.walk(d.root, "")
	if len(x.errs) > 0 {
		return joinErrors(sortErrors(x.errs))
	}
	for name, value := range x.used {
		if value != "" {
			d.secrets = append(d.secrets, substitution{name: name, value: value})
		}
	}
	// Longest first, so that a value containing another is masked whole.
	slices.SortFunc(d.secrets, func(a, b substitution) int {
		return cmp.Or(cmp.Compare(len(b.value), len(a.value)), cmp.Compare(a.name, b.name))
	})
	return nil
}

type expander struct {
	doc    *Document
	lookup func(string) (string, bool)
	used   map[string]string // variable name -> value substituted
	errs   []*Error
}

// walk follows Content only, never Alias, so each node is expanded once however
// often it is referenced, and cyclic aliases are harmless.
func (x *expander) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			x.walk(n.Content[i+1], joinKey(path, deref(n.Content[i]).Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, path+"["+strconv.Itoa(i)+"]")
		}
	case yaml.ScalarNode:
		x.scalar(n, path)
	}
}

func (x *expander) scalar(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	value, ok := x.expandString(n, path)
	if !ok || value == n.Value {
		return
	}
	x.doc.original[n] = n.Value
	n.Value = value
	if n.Style == 0 {
		// A plain scalar's type follows from its text: "port: ${PORT}" is an
		// integer when PORT is "8080". Resolve again from the new text.
		n.Tag = ""
		n.Tag = n.ShortTag()
	}
}

// expandString returns n.Value with references replaced; ok is false after
// reporting an error.
func (x *expander) expandString(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	var b strings.Builder
	ok := true
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				x.errorf(n, path, `unterminated "${" (write "$${" for a literal "${")`)
				return "", false
			}
			ref := s[i+2 : i+2+end]
			i += 2 + end + 1
			name, def, hasDefault := strings.Cut(ref, ":-")
			if !validVarName(name) {
				x.errorf(n, path, "invalid variable reference %s: use ${NAME} or ${NAME:-default}", truncate("${"+ref+"}"))
				ok = false
				continue
			}
			value, set := x.lookup(name)
			switch {
			case hasDefault && value == "":
				value = def
			case !set:
				x.errorf(n, path, "environment variable %s is not set", name)
				ok = false
				continue
			default:
				x.used[name] = value
			}
			b.WriteString(value)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), ok
}

func (x *expander) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	x.errs = append(x.errs, &Error{File: x.doc.file, Line: n.Line, Column: n.Column, Msg: msg})
}

// validVarName reports whether name is a shell-style variable name.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// joinKey appends a mapping key to a path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// truncate shortens text quoted in messages; a huge scalar must not make a
// huge error.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
