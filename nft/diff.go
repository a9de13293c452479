package nft

import "strings"

// This file computes the fingerprints an Applier compares to leave chains
// and sets alone when a new plan does not change them: deleting rules
// makes the kernel wait for an RCU grace period (about 10 ms here) in
// every transaction that does it, so unchanged chains are not rewritten.

// key is an exact text of the rule: unlike String it hides nothing.
func (r Rule) key() string {
	var b strings.Builder
	for _, e := range r.Exprs {
		b.WriteString(e.String())
		b.WriteByte(' ')
	}
	b.WriteString("comment=" + r.Comment)
	return b.String()
}

// refs returns the named sets and maps the chain's rules use.
func (c *Chain) refs() []string {
	var out []string
	for _, r := range c.Rules {
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case AddrInSet:
				out = append(out, e.Set)
			case SetUpdate:
				out = append(out, e.Set)
			case MarkVmap:
				out = append(out, e.Map)
			}
		}
	}
	return out
}

// decl is the set's declaration without elements.
func (s *Set) decl() string {
	d := *s
	d.Addrs, d.Map = nil, nil
	return d.String()
}

// fingerprint identifies the chain's kernel content: its hook, its rules
// and the declarations of the sets they use.
func (c *Chain) fingerprint(sets map[string]*Set) string {
	var b strings.Builder
	if c.Hook != nil {
		b.WriteString(c.Hook.Type + " " + c.Hook.Hook + " " + priorityString(c.Hook.Priority) + "\n")
	}
	for _, r := range c.Rules {
		b.WriteString(r.key() + "\n")
	}
	for _, name := range c.refs() {
		if s := sets[name]; s != nil {
			b.WriteString(s.decl())
		}
	}
	return b.String()
}

// fingerprints returns the fingerprint of every chain ("chain NAME") and
// of every managed set's declaration and elements ("set NAME").
func (p *Plan) fingerprints() map[string]string {
	sets := make(map[string]*Set, len(p.Table.Sets))
	out := make(map[string]string, len(p.Table.Chains)+len(p.Table.Sets))
	for _, s := range p.Table.Sets {
		sets[s.Name] = s
		if s.Contents == Managed {
			out["set "+s.Name] = s.contentKey()
		}
	}
	for _, c := range p.Table.Chains {
		out["chain "+c.Name] = c.fingerprint(sets)
	}
	return out
}

// contentKey is an exact, cheap text of a managed set: its declaration
// and its elements in binary (sets can hold 100 000 elements).
func (s *Set) contentKey() string {
	var b strings.Builder
	b.WriteString(s.decl())
	for _, a := range s.Addrs {
		b.Write(a.From.AsSlice())
		b.Write(a.To.AsSlice())
	}
	for _, m := range s.Map {
		b.WriteString(hex32(m.Key) + m.Verdict.String() + ",")
	}
	return b.String()
}
