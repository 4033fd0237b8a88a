package policy

import (
	"math/bits"
	"slices"
)

// bitset is a dense set of small integers (role or capability indexes).
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int32)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int32) bool { return b[i/64]&(1<<(i%64)) != 0 }

func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

// each calls f for every member of b in increasing order.
func (b bitset) each(f func(int32)) {
	for w, word := range b {
		for word != 0 {
			i := bits.TrailingZeros64(word)
			f(int32(w*64 + i))
			word &= word - 1
		}
	}
}

// wordMask is one non-zero word of a sparse bitset.
type wordMask struct {
	word int
	mask uint64
}

// sparse is a bitset that keeps only its non-zero words. A route requires
// few roles and capabilities, so its requirements are checked word by word
// against a user's dense closure without touching the other words.
type sparse []wordMask

func toSparse(b bitset) sparse {
	var s sparse
	for w, m := range b {
		if m != 0 {
			s = append(s, wordMask{w, m})
		}
	}
	return s
}

// roleClosure is what holding one role grants: the role, every role it
// inherits transitively, and the union of their capabilities.
type roleClosure struct {
	roles bitset
	caps  bitset
}

// roleTable indexes roles and capabilities. Defined roles come first, in
// name order; roles that only routes mention follow, so that a token role
// with such a name still satisfies a route that names it.
type roleTable struct {
	roleIndex  map[string]int32
	roleNames  []string
	numDefined int
	closures   []roleClosure
	capIndex   map[string]int32
	capNames   []string
}

// inlineWords is how many words of required capabilities Authorize can
// accumulate without allocating: 8 words cover any route whose capabilities
// fall in at most 8 blocks of 64, which is every realistic route.
const inlineWords = 8

// Authorize decides whether a user may use route r, which p's Match returned.
// authenticated is false when the request carried no (valid) token; roles are
// the token's roles. A route from another Policy is evaluated by name against
// p's roles, which is correct but slower.
func (p *Policy) Authorize(r *Route, roles []string, authenticated bool) Decision {
	if r.Auth == AuthNone {
		return Allow
	}
	restricted := len(r.Roles) > 0 || len(r.Capabilities) > 0
	if !authenticated {
		if r.Auth == AuthOptional && !restricted {
			return Allow
		}
		return Unauthenticated
	}
	if !restricted {
		return Allow
	}
	if r.owner != p {
		return p.authorizeByName(r, roles)
	}
	var inline [inlineWords]uint64
	var acc []uint64
	if len(r.capsReq) <= inlineWords {
		acc = inline[:len(r.capsReq)]
	} else {
		acc = make([]uint64, len(r.capsReq))
	}
	rolesOK := len(r.rolesReq) == 0
	t := &p.roles
	for _, name := range roles {
		i, ok := t.roleIndex[name]
		if !ok {
			continue
		}
		c := &t.closures[i]
		if !rolesOK {
			for _, wm := range r.rolesReq {
				if c.roles[wm.word]&wm.mask != 0 {
					rolesOK = true
					break
				}
			}
		}
		for k, wm := range r.capsReq {
			acc[k] |= c.caps[wm.word]
		}
	}
	if !rolesOK {
		return Forbidden
	}
	for k, wm := range r.capsReq {
		if acc[k]&wm.mask != wm.mask {
			return Forbidden
		}
	}
	return Allow
}

func (p *Policy) authorizeByName(r *Route, roles []string) Decision {
	eff := p.EffectiveRoles(roles)
	if len(r.Roles) > 0 && !slices.ContainsFunc(r.Roles, func(s string) bool {
		_, found := slices.BinarySearch(eff, s)
		return found
	}) {
		return Forbidden
	}
	caps := p.Capabilities(roles)
	for _, c := range r.Capabilities {
		if _, found := slices.BinarySearch(caps, c); !found {
			return Forbidden
		}
	}
	return Allow
}

// closure returns the union of the closures of the known roles among names.
func (t *roleTable) closure(names []string) roleClosure {
	u := roleClosure{roles: newBitset(len(t.roleNames)), caps: newBitset(len(t.capNames))}
	for _, name := range names {
		if i, ok := t.roleIndex[name]; ok {
			u.roles.or(t.closures[i].roles)
			u.caps.or(t.closures[i].caps)
		}
	}
	return u
}

// EffectiveRoles returns the given roles and every role they inherit,
// sorted and without duplicates. Roles the configuration does not define
// are kept, since a route may name them, but inherit nothing.
func (p *Policy) EffectiveRoles(roles []string) []string {
	t := &p.roles
	var out []string
	t.closure(roles).roles.each(func(i int32) { out = append(out, t.roleNames[i]) })
	for _, name := range roles {
		if _, ok := t.roleIndex[name]; !ok && name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Capabilities returns the capabilities that the given roles grant through
// the current configuration, sorted and without duplicates.
func (p *Policy) Capabilities(roles []string) []string {
	t := &p.roles
	var out []string
	t.closure(roles).caps.each(func(i int32) { out = append(out, t.capNames[i]) })
	slices.Sort(out)
	return out
}

// HasRole reports whether the configuration defines the role name.
func (p *Policy) HasRole(name string) bool {
	i, ok := p.roles.roleIndex[name]
	return ok && int(i) < p.roles.numDefined
}

// RoleNames returns the names of the defined roles, sorted.
func (p *Policy) RoleNames() []string {
	return slices.Clone(p.roles.roleNames[:p.roles.numDefined])
}
