package policy

// node is one level of the route trie. Children are tried in precedence
// order (literal, then one-segment wildcard, then "**"), so the first route
// found that allows the method is the most specific one, and the cost of a
// lookup depends on the depth of the path, not on the number of routes.
type node struct {
	lit   map[string]*node
	param *node    // "*" and "{name}" share a child: they are equivalent
	end   []*Route // patterns that end at this node
	glob  []*Route // patterns that end with "**" at this node
}

// insert returns the list that holds routes with the pattern segs, creating
// nodes as needed.
func (n *node) insert(segs []segment) *[]*Route {
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			c := n.lit[s.text]
			if c == nil {
				if n.lit == nil {
					n.lit = make(map[string]*node)
				}
				c = &node{}
				n.lit[s.text] = c
			}
			n = c
		case segParam:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		case segGlob:
			return &n.glob
		}
	}
	return &n.end
}

// match returns the most specific route under n that matches rest (the path
// without its leading "/") and allows method. matched reports whether any
// pattern matched rest, whatever its methods.
func (n *node) match(rest, method string) (r *Route, matched bool) {
	if rest == "" {
		if len(n.end) > 0 {
			matched = true
			if r := allowing(n.end, method); r != nil {
				return r, true
			}
		}
	} else {
		seg, after := nextSegment(rest)
		if c := n.lit[seg]; c != nil {
			r, m := c.match(after, method)
			if r != nil {
				return r, true
			}
			matched = matched || m
		}
		// An empty segment only comes from a path the caller should have
		// rejected; a wildcard must not make it routable.
		if n.param != nil && seg != "" {
			r, m := n.param.match(after, method)
			if r != nil {
				return r, true
			}
			matched = matched || m
		}
	}
	if len(n.glob) > 0 {
		matched = true
		if r := allowing(n.glob, method); r != nil {
			return r, true
		}
	}
	return nil, matched
}

// allowing returns the first route of rs that allows method. rs is sorted so
// that routes listing methods come before the one that does not.
func allowing(rs []*Route, method string) *Route {
	for _, r := range rs {
		if r.AllowsMethod(method) {
			return r
		}
	}
	return nil
}

// collect appends every route under n whose pattern matches rest. The walk
// visits subtrees in precedence order, so the result is in precedence order.
func (n *node) collect(rest string, out []*Route) []*Route {
	if rest == "" {
		out = append(out, n.end...)
	} else {
		seg, after := nextSegment(rest)
		if c := n.lit[seg]; c != nil {
			out = c.collect(after, out)
		}
		if n.param != nil && seg != "" {
			out = n.param.collect(after, out)
		}
	}
	return append(out, n.glob...)
}

// covers reports whether the routes under n more specific than a "**" at n
// take every path that reaches n for method (anyMethod: for every method).
// It is a sufficient test, good enough to warn about shadowed routes: literal
// children are ignored because they cannot cover every segment value.
func (n *node) covers(method string) bool {
	if !anyAllows(n.end, method) || n.param == nil {
		return false
	}
	return n.param.coversFrom(method)
}

// coversFrom reports whether routes at or under n take every path that
// reaches n, including the ones that end here.
func (n *node) coversFrom(method string) bool {
	return anyAllows(n.glob, method) || n.covers(method)
}

// anyMethod stands for "every method" in the coverage tests: only a route
// without a method list allows it.
const anyMethod = ""

func anyAllows(rs []*Route, method string) bool {
	for _, r := range rs {
		if method == anyMethod {
			if r.Methods == nil {
				return true
			}
		} else if r.AllowsMethod(method) {
			return true
		}
	}
	return false
}
