package nft

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strconv"
)

// u128 is an address as a 128-bit integer (IPv4 in the low 32 bits), for
// range arithmetic.
type u128 struct{ hi, lo uint64 }

func u128From(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var x u128
	for i := range 8 {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[8+i])
	}
	return x
}

func (x u128) addr(is4 bool) netip.Addr {
	if is4 {
		return netip.AddrFrom4([4]byte{byte(x.lo >> 24), byte(x.lo >> 16), byte(x.lo >> 8), byte(x.lo)})
	}
	var b [16]byte
	for i := range 8 {
		b[i] = byte(x.hi >> (56 - 8*i))
		b[8+i] = byte(x.lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

func (x u128) cmp(y u128) int {
	if c := cmp.Compare(x.hi, y.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, y.lo)
}

func (x u128) add1() u128 {
	if x.lo == ^uint64(0) {
		return u128{hi: x.hi + 1}
	}
	return u128{x.hi, x.lo + 1}
}

func (x u128) and(y u128) u128 { return u128{x.hi & y.hi, x.lo & y.lo} }
func (x u128) xor(y u128) u128 { return u128{x.hi ^ y.hi, x.lo ^ y.lo} }
func (x u128) isZero() bool    { return x.hi == 0 && x.lo == 0 }

// maxU128 is the largest address of a family as an integer.
func maxU128(is4 bool) u128 {
	if is4 {
		return u128{lo: 0xffffffff}
	}
	return u128{^uint64(0), ^uint64(0)}
}

// AddrRange is an inclusive range of addresses of one family, the unit of
// interval sets. It prints as nft lists it: a prefix when it is one (a bare
// address for a single host), otherwise "first-last".
type AddrRange struct {
	From, To netip.Addr
}

// prefixBits returns the prefix length when the range is exactly one
// prefix, or -1.
func (r AddrRange) prefixBits() int {
	f, t := u128From(r.From), u128From(r.To)
	span := f.xor(t) // must be 0…01…1 with f having zeros there
	if !f.and(span).isZero() || !span.add1().and(span).isZero() {
		return -1
	}
	host := 0
	for s := span; !s.isZero(); s = (u128{s.hi >> 1, s.lo>>1 | s.hi<<63}) {
		host++
	}
	return r.From.BitLen() - host
}

// String formats the range as nft does.
func (r AddrRange) String() string {
	switch n := r.prefixBits(); {
	case n == r.From.BitLen():
		return nftAddr(r.From)
	case n >= 0:
		return nftAddr(r.From) + "/" + strconv.Itoa(n)
	default:
		return nftAddr(r.From) + "-" + nftAddr(r.To)
	}
}

// mergePrefixes turns prefixes of one family into sorted, disjoint,
// non-adjacent ranges (what nft's auto-merge would keep). Prefixes are
// masked first, so host bits never matter.
func mergePrefixes(ps []netip.Prefix) []AddrRange {
	type span struct{ from, to u128 }
	if len(ps) == 0 {
		return nil
	}
	is4 := ps[0].Addr().Is4()
	spans := make([]span, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		from := u128From(p.Addr())
		host := p.Addr().BitLen() - p.Bits()
		var hostMask u128
		switch {
		case host >= 64:
			hostMask = u128{hi: 1<<(host-64) - 1, lo: ^uint64(0)}
		default:
			hostMask = u128{lo: 1<<host - 1}
		}
		spans = append(spans, span{from, u128{from.hi | hostMask.hi, from.lo | hostMask.lo}})
	}
	// sort.Slice: a generic sort per struct type costs ~10 KB of MIPS code.
	sort.Slice(spans, func(i, j int) bool { return spans[i].from.cmp(spans[j].from) < 0 })
	out := make([]AddrRange, 0, len(spans))
	cur := spans[0]
	top := maxU128(is4)
	for _, s := range spans[1:] {
		if cur.to.cmp(top) == 0 || s.from.cmp(cur.to.add1()) <= 0 {
			if s.to.cmp(cur.to) > 0 {
				cur.to = s.to
			}
			continue
		}
		out = append(out, AddrRange{cur.from.addr(is4), cur.to.addr(is4)})
		cur = s
	}
	return append(out, AddrRange{cur.from.addr(is4), cur.to.addr(is4)})
}

// MaskedAddr matches the addresses whose bits under Mask equal those of
// Addr: a & Mask == Addr & Mask. It carries iptables' dotted netmasks that
// are not prefixes, such as 0.0.0.1/0.0.0.1 (the odd addresses); Addr and
// Mask are of one family.
type MaskedAddr struct {
	Addr, Mask netip.Addr
}

// valid reports whether the address and the mask are of one family.
func (m MaskedAddr) valid() bool {
	return m.Addr.IsValid() && m.Mask.IsValid() && m.Addr.BitLen() == m.Mask.BitLen() &&
		m.Addr.Zone() == "" && m.Mask.Zone() == ""
}

// value returns Addr & Mask.
func (m MaskedAddr) value() netip.Addr {
	return u128From(m.Addr).and(u128From(m.Mask)).addr(m.Addr.Is4())
}

// prefix returns the match as a prefix when the mask is contiguous.
func (m MaskedAddr) prefix() (netip.Prefix, bool) {
	mask := u128From(m.Mask)
	host := mask.xor(maxU128(m.Mask.Is4())) // must be 0…01…1
	if !host.add1().and(host).isZero() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(m.value(), bits.OnesCount64(mask.hi)+bits.OnesCount64(mask.lo)), true
}

// Contains reports whether a matches. An invalid MaskedAddr matches
// nothing, and neither does an address of the other family.
func (m MaskedAddr) Contains(a netip.Addr) bool {
	if !m.valid() || a.BitLen() != m.Addr.BitLen() {
		return false
	}
	mask := u128From(m.Mask)
	return u128From(a).and(mask) == u128From(m.Addr).and(mask)
}

// String formats the match as iptables and the configuration write it:
// address/mask.
func (m MaskedAddr) String() string { return nftAddr(m.Addr) + "/" + nftAddr(m.Mask) }

// admits reports whether a passes an address option made of prefixes and
// masked addresses: always when both are empty, otherwise when a is in one
// of them.
func admits(ps []netip.Prefix, ms []MaskedAddr, a netip.Addr) bool {
	if len(ps) == 0 && len(ms) == 0 {
		return true
	}
	return a.IsValid() && (slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) }) ||
		slices.ContainsFunc(ms, func(m MaskedAddr) bool { return m.Contains(a) }))
}

// nftAddr formats an address as nft prints it (glibc inet_ntop): like
// netip, except that IPv6 addresses whose first 96 bits are zero and whose
// seventh group is not (IPv4-compatible addresses) end in dotted quad
// notation, such as ::0.255.0.1.
func nftAddr(a netip.Addr) string {
	if !a.Is6() || a.Is4In6() {
		return a.String()
	}
	b := a.As16()
	for _, c := range b[:12] {
		if c != 0 {
			return a.String()
		}
	}
	if b[12] == 0 && b[13] == 0 {
		return a.String()
	}
	return "::" + netip.AddrFrom4([4]byte(b[12:])).String()
}

// splitFamilies returns the prefixes of one family, in input order.
func splitFamilies(ps []netip.Prefix, fam Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if familyOf(p.Addr()) == fam {
			out = append(out, p)
		}
	}
	return out
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// PortRange is an inclusive range of TCP/UDP ports; First == Last for a
// single port.
type PortRange struct {
	First, Last uint16
}

// String formats the range as nft does ("443", "1024-2048").
func (p PortRange) String() string {
	if p.First == p.Last {
		return strconv.Itoa(int(p.First))
	}
	return strconv.Itoa(int(p.First)) + "-" + strconv.Itoa(int(p.Last))
}

// mergePorts sorts and merges overlapping or adjacent port ranges.
func mergePorts(ps []PortRange) []PortRange {
	if len(ps) == 0 {
		return nil
	}
	s := slices.Clone(ps)
	for i := range s {
		if s[i].First > s[i].Last {
			s[i].First, s[i].Last = s[i].Last, s[i].First
		}
	}
	sort.Slice(s, func(i, j int) bool { return s[i].First < s[j].First })
	out := s[:1]
	for _, p := range s[1:] {
		last := &out[len(out)-1]
		if uint32(p.First) <= uint32(last.Last)+1 {
			last.Last = max(last.Last, p.Last)
			continue
		}
		out = append(out, p)
	}
	return out
}
