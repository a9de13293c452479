//go:build linux

package nft

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// This file is the one place where IR values become google/nftables
// expressions. Every translation produces what nft 1.0.6 generates for the
// same source text, so `nft list` prints the IR's String.

// maxAnonElements bounds the ranges of one anonymous set: its elements
// travel in one netlink attribute of at most 64 KiB.
const maxAnonElements = 500

// setIDs hands out transaction-local set ids. google/nftables v0.3.0
// allocates ids from an unsynchronised package variable when Set.ID is 0,
// so every set gets its id here.
type setIDs struct{ next uint32 }

func (s *setIDs) id() uint32 { s.next++; return s.next }

// ruleBuilder translates the expressions of one rule. It tracks the
// protocol dependencies nft inserts implicitly (meta nfproto before an
// ip/ip6 payload, meta l4proto before a transport payload) so each is
// emitted once, just before the first expression that needs it.
type ruleBuilder struct {
	table  *nftables.Table
	ids    *setIDs
	exprs  []expr.Any
	anon   []anonSet // anonymous sets the rule needs, added before it
	family Family    // network family established so far
	l4     int       // transport protocol established so far, -1 = none
}

// anonSet is an anonymous constant set with its elements.
type anonSet struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

func (b *ruleBuilder) add(es ...expr.Any) { b.exprs = append(b.exprs, es...) }

func loadMeta(key expr.MetaKey) *expr.Meta { return &expr.Meta{Key: key, Register: 1} }

func cmpEq(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

func nfprotoValue(f Family) byte {
	if f == IPv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// needFamily emits the meta nfproto dependency unless already established.
func (b *ruleBuilder) needFamily(f Family) {
	if b.family == f {
		return
	}
	b.add(loadMeta(expr.MetaKeyNFPROTO), cmpEq([]byte{nfprotoValue(f)}))
	b.family = f
}

// needL4 emits the meta l4proto dependency unless already established.
func (b *ruleBuilder) needL4(p uint8) {
	if b.l4 == int(p) {
		return
	}
	b.add(loadMeta(expr.MetaKeyL4PROTO), cmpEq([]byte{p}))
	b.l4 = int(p)
}

// addrOffset returns the network header offset and length of the source
// or destination address.
func addrOffset(f Family, dst bool) (off, n uint32) {
	switch {
	case f == IPv6 && dst:
		return 24, 16
	case f == IPv6:
		return 8, 16
	case dst:
		return 16, 4
	}
	return 12, 4
}

func loadAddr(f Family, dst bool) *expr.Payload {
	off, n := addrOffset(f, dst)
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

func addrBytes(a netip.Addr) []byte { return a.AsSlice() }

// markBytes is a mark in host byte order, as the kernel keeps marks.
func markBytes(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

func be16(v uint16) []byte { return binaryutil.BigEndian.PutUint16(v) }

// interval is one range of a big-endian interval set key.
type interval struct {
	from, to []byte // inclusive
	verdict  *expr.Verdict
}

// isMax reports whether a big-endian value is all ones.
func isMax(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// plusOne returns b+1 for a big-endian value that is not all ones.
func plusOne(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			break
		}
	}
	return out
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// intervalElems encodes sorted, disjoint ranges as the kernel's interval
// set elements, the way nft does: a start element per range, an end
// element (flagged) at last+1 unless the next range starts there or the
// range reaches the maximum, and a leading end element at zero when the
// first range does not start at zero.
func intervalElems(ranges []interval) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(ranges)+1)
	if len(ranges) > 0 && !isZero(ranges[0].from) {
		out = append(out, nftables.SetElement{Key: make([]byte, len(ranges[0].from)), IntervalEnd: true})
	}
	for i, r := range ranges {
		out = append(out, nftables.SetElement{Key: r.from, VerdictData: r.verdict})
		if isMax(r.to) {
			continue
		}
		end := plusOne(r.to)
		if i+1 < len(ranges) && string(ranges[i+1].from) == string(end) {
			continue
		}
		out = append(out, nftables.SetElement{Key: end, IntervalEnd: true})
	}
	return out
}

func addrIntervals(rs []AddrRange) []interval {
	out := make([]interval, len(rs))
	for i, r := range rs {
		out[i] = interval{from: addrBytes(r.From), to: addrBytes(r.To)}
	}
	return out
}

// anonymous queues an anonymous constant set and looks the register up in
// it (a verdict map when isMap).
func (b *ruleBuilder) anonymous(key nftables.SetDatatype, interval, isMap bool, elems []nftables.SetElement) error {
	if len(elems) > 2*maxAnonElements {
		return fmt.Errorf("anonymous set with %d elements exceeds %d", len(elems), 2*maxAnonElements)
	}
	s := &nftables.Set{
		Table: b.table, ID: b.ids.id(), Name: "__set%d", Anonymous: true, Constant: true,
		Interval: interval, KeyType: key,
	}
	lookup := &expr.Lookup{SourceRegister: 1, SetID: s.ID, SetName: s.Name}
	if isMap {
		s.Name, s.IsMap, s.DataType = "__map%d", true, nftables.TypeVerdict
		lookup.SetName, lookup.IsDestRegSet = s.Name, true
	}
	b.anon = append(b.anon, anonSet{s, elems})
	b.add(lookup)
	return nil
}

// matchRanges compares register 1 (big-endian values) with ranges: equal
// for one value, a gte/lte pair for one range, else an interval set.
func (b *ruleBuilder) matchRanges(key nftables.SetDatatype, rs []interval) error {
	switch {
	case len(rs) == 1 && string(rs[0].from) == string(rs[0].to):
		b.add(cmpEq(rs[0].from))
	case len(rs) == 1:
		b.add(&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: rs[0].from},
			&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: rs[0].to})
	default:
		return b.anonymous(key, true, false, intervalElems(rs))
	}
	return nil
}

func addrType(f Family) nftables.SetDatatype {
	if f == IPv6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

func (b *ruleBuilder) setMark(ct bool, mask, value uint32) {
	bitwise := &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: markBytes(^mask), Xor: markBytes(value)}
	if ct {
		b.add(&expr.Ct{Key: expr.CtKeyMARK, Register: 1}, bitwise, &expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
		return
	}
	b.add(loadMeta(expr.MetaKeyMARK), bitwise, &expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true})
}

func maskedMark(ct bool, mask uint32) []expr.Any {
	var load expr.Any = loadMeta(expr.MetaKeyMARK)
	if ct {
		load = &expr.Ct{Key: expr.CtKeyMARK, Register: 1}
	}
	return []expr.Any{load, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: markBytes(mask), Xor: markBytes(0)}}
}

func verdictExpr(v Verdict) (*expr.Verdict, error) {
	switch v.Kind {
	case Jump:
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}, nil
	case Goto:
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: v.Chain}, nil
	case Return:
		return &expr.Verdict{Kind: expr.VerdictReturn}, nil
	case Accept:
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	}
	return nil, fmt.Errorf("invalid verdict kind %d", v.Kind)
}

// ifnameBytes pads an interface name to IFNAMSIZ as nft compares it.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// translate converts one IR expression.
func (b *ruleBuilder) translate(e Expr, named map[string]*nftables.Set) error {
	switch e := e.(type) {
	case Nfproto:
		b.add(loadMeta(expr.MetaKeyNFPROTO), cmpEq([]byte{nfprotoValue(e.Family)}))
		b.family = e.Family
	case L4Proto:
		b.add(loadMeta(expr.MetaKeyL4PROTO), cmpEq([]byte{e.Proto}))
		b.l4 = int(e.Proto)
	case MarkCmp:
		op := expr.CmpOpEq
		if e.Neq {
			op = expr.CmpOpNeq
		}
		b.add(maskedMark(e.Ct, e.Mask)...)
		b.add(&expr.Cmp{Op: op, Register: 1, Data: markBytes(e.Value)})
	case IfName:
		if len(e.Name) >= unix.IFNAMSIZ {
			return fmt.Errorf("interface name %q too long", e.Name)
		}
		key := expr.MetaKeyIIFNAME
		if e.Out {
			key = expr.MetaKeyOIFNAME
		}
		b.add(loadMeta(key), cmpEq(ifnameBytes(e.Name)))
	case AddrMatch:
		if len(e.Ranges) == 0 || len(e.Ranges) > maxAnonElements {
			return fmt.Errorf("%s: %d address ranges (1..%d allowed)", addrField(e.Family, e.Dst), len(e.Ranges), maxAnonElements)
		}
		b.needFamily(e.Family)
		load := loadAddr(e.Family, e.Dst)
		if r := e.Ranges[0]; len(e.Ranges) == 1 && r.prefixBits() > 0 && r.prefixBits() < r.From.BitLen() {
			p := netip.PrefixFrom(r.From, r.prefixBits())
			mask := make([]byte, load.Len)
			for i := 0; i < p.Bits(); i++ {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			b.add(load, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: load.Len, Mask: mask, Xor: make([]byte, load.Len)}, cmpEq(addrBytes(r.From)))
			return nil
		}
		b.add(load)
		return b.matchRanges(addrType(e.Family), addrIntervals(e.Ranges))
	case AddrMasked:
		if !e.Mask.IsValid() || !e.Value.IsValid() || familyOf(e.Mask) != e.Family || familyOf(e.Value) != e.Family {
			return fmt.Errorf("%s: mask %s and value %s must be %s addresses", addrField(e.Family, e.Dst), e.Mask, e.Value, e.Family)
		}
		b.needFamily(e.Family)
		load := loadAddr(e.Family, e.Dst)
		b.add(load,
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: load.Len, Mask: addrBytes(e.Mask), Xor: make([]byte, load.Len)},
			cmpEq(addrBytes(e.Value)))
	case AddrInSet:
		b.needFamily(e.Family)
		s := named[e.Set]
		if s == nil {
			return fmt.Errorf("set %s is not in the plan", e.Set)
		}
		b.add(loadAddr(e.Family, e.Dst), &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID})
	case PortMatch:
		if len(e.Ranges) == 0 || len(e.Ranges) > maxAnonElements {
			return fmt.Errorf("%d port ranges (1..%d allowed)", len(e.Ranges), maxAnonElements)
		}
		if e.Proto != protoTCP && e.Proto != protoUDP {
			return fmt.Errorf("ports of protocol %d", e.Proto)
		}
		b.needL4(e.Proto)
		off := uint32(0)
		if e.Dst {
			off = 2
		}
		b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2})
		rs := make([]interval, len(e.Ranges))
		for i, p := range e.Ranges {
			rs[i] = interval{from: be16(p.First), to: be16(p.Last)}
		}
		return b.matchRanges(nftables.TypeInetService, rs)
	case ICMPv6Types:
		if len(e.Types) == 0 {
			return fmt.Errorf("empty icmpv6 type list")
		}
		b.needFamily(IPv6)
		b.needL4(protoICMPv6)
		b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})
		if len(e.Types) == 1 {
			b.add(cmpEq([]byte{e.Types[0]}))
			return nil
		}
		elems := make([]nftables.SetElement, len(e.Types))
		for i, t := range e.Types {
			elems[i] = nftables.SetElement{Key: []byte{t}}
		}
		return b.anonymous(nftables.TypeICMP6Type, false, false, elems)
	case NumgenVmap:
		if e.Mod == 0 || len(e.Entries) == 0 {
			return fmt.Errorf("numgen map without entries")
		}
		rs := make([]interval, len(e.Entries))
		for i, en := range e.Entries {
			v, err := verdictExpr(en.Verdict)
			if err != nil {
				return err
			}
			rs[i] = interval{from: binaryutil.BigEndian.PutUint32(en.First), to: binaryutil.BigEndian.PutUint32(en.Last), verdict: v}
		}
		// numgen yields a host-order value; interval keys are big-endian.
		b.add(&expr.Numgen{Register: 1, Modulus: e.Mod, Type: unix.NFT_NG_RANDOM},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4})
		return b.anonymous(nftables.TypeInteger, true, true, intervalElems(rs))
	case MarkVmap:
		s := named[e.Map]
		if s == nil {
			return fmt.Errorf("map %s is not in the plan", e.Map)
		}
		b.add(maskedMark(e.Ct, e.Mask)...)
		b.add(&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, IsDestRegSet: true})
	case CounterRef:
		b.add(&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: e.Name})
	case Log:
		b.add(&expr.Log{
			Key:   1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_LEVEL,
			Level: expr.LogLevel(e.Level),
			Data:  []byte(e.Prefix),
		})
	case SetMark:
		b.setMark(e.Ct, e.Mask, e.Value)
	case SetUpdate:
		s := named[e.Set]
		if s == nil {
			return fmt.Errorf("set %s is not in the plan", e.Set)
		}
		b.needFamily(e.Family)
		b.add(loadAddr(e.Family, false), &expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID, Operation: unix.NFT_DYNSET_OP_UPDATE})
	case SaddrLocal:
		op := expr.CmpOpEq
		if e.Neq {
			op = expr.CmpOpNeq
		}
		// The address type is a host-order 32-bit value.
		b.add(&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagSADDR: true, FlagOIF: e.OnOif},
			&expr.Cmp{Op: op, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
	case Masquerade:
		b.add(&expr.Masq{})
	case Cgroup:
		b.add(&expr.Socket{Key: expr.SocketKeyCgroupv2, Level: e.Level, Register: 1},
			cmpEq(binaryutil.NativeEndian.PutUint64(e.ID)))
	case Verdict:
		v, err := verdictExpr(e)
		if err != nil {
			return err
		}
		b.add(v)
	default:
		return fmt.Errorf("unknown expression %T", e)
	}
	return nil
}

// translateRule converts a rule; the anonymous sets must be added to the
// transaction before the rule.
func translateRule(t *nftables.Table, c *nftables.Chain, r Rule, ids *setIDs, named map[string]*nftables.Set) (*nftables.Rule, []anonSet, error) {
	b := ruleBuilder{table: t, ids: ids, l4: -1}
	for _, e := range r.Exprs {
		if err := b.translate(e, named); err != nil {
			return nil, nil, err
		}
	}
	rule := &nftables.Rule{Table: t, Chain: c, Exprs: b.exprs}
	if r.Comment != "" {
		rule.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
	}
	return rule, b.anon, nil
}

// keyType returns the library's datatype of a set key.
func keyType(k KeyType) nftables.SetDatatype {
	switch k {
	case KeyIPv6:
		return nftables.TypeIP6Addr
	case KeyMark:
		return nftables.TypeMark
	}
	return nftables.TypeIPAddr
}

// translateSet converts a named set's declaration.
func translateSet(t *nftables.Table, s *Set, id uint32) *nftables.Set {
	out := &nftables.Set{
		Table: t, ID: id, Name: s.Name, KeyType: keyType(s.Key),
		Interval: s.Interval, AutoMerge: s.AutoMerge, Dynamic: s.Dynamic,
		HasTimeout: s.Timeout != 0, Timeout: s.Timeout, Size: s.Size,
	}
	if s.Key == KeyMark {
		out.KeyByteOrder = binaryutil.NativeEndian
	}
	if s.Verdicts {
		out.IsMap, out.DataType = true, nftables.TypeVerdict
	}
	return out
}

// setElements converts the managed elements of a set.
func setElements(s *Set) ([]nftables.SetElement, error) {
	if len(s.Map) > 0 {
		out := make([]nftables.SetElement, len(s.Map))
		for i, m := range s.Map {
			v, err := verdictExpr(m.Verdict)
			if err != nil {
				return nil, fmt.Errorf("map %s key %s: %w", s.Name, hex32(m.Key), err)
			}
			out[i] = nftables.SetElement{Key: markBytes(m.Key), VerdictData: v}
		}
		return out, nil
	}
	if !s.Interval {
		out := make([]nftables.SetElement, 0, len(s.Addrs))
		for _, a := range s.Addrs {
			if a.From != a.To {
				return nil, fmt.Errorf("set %s: range %s needs an interval set", s.Name, a)
			}
			out = append(out, nftables.SetElement{Key: addrBytes(a.From)})
		}
		return out, nil
	}
	return intervalElems(addrIntervals(s.Addrs)), nil
}
