package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// This file is the one place where IR values become nf_tables
// expressions. Every translation produces what nft 1.0.6 generates for the
// same source text, so `nft list` prints the IR's String.

// maxAnonElements bounds the ranges of one anonymous set: its elements
// travel in one netlink attribute of at most 64 KiB.
const maxAnonElements = 500

// reg1 is the data register every expression here works in (NFT_REG_1).
const reg1 = unix.NFT_REG_1

// setIDs hands out transaction-local set ids.
type setIDs struct{ next uint32 }

func (s *setIDs) id() uint32 { s.next++; return s.next }

// ruleBuilder translates the expressions of one rule into the content of
// NFTA_RULE_EXPRESSIONS. It tracks the protocol dependencies nft inserts
// implicitly (meta nfproto before an ip/ip6 payload, meta l4proto before a
// transport payload) so each is emitted once, just before the first
// expression that needs it.
type ruleBuilder struct {
	ids    *setIDs
	w      attrWriter
	anon   []anonSet // anonymous sets the rule needs, added before it
	family Family    // network family established so far
	l4     int       // transport protocol established so far, -1 = none
}

// anonSet is an anonymous constant set with its elements.
type anonSet struct {
	set   *nlSet
	elems []setElem
}

// expr starts an expression named name; done ends it after its
// attributes.
func (b *ruleBuilder) expr(name string) (elem, data int) {
	elem = b.w.begin(unix.NFTA_LIST_ELEM)
	b.w.str(unix.NFTA_EXPR_NAME, name)
	return elem, b.w.begin(unix.NFTA_EXPR_DATA)
}

func (b *ruleBuilder) done(elem, data int) {
	b.w.end(data)
	b.w.end(elem)
}

// meta loads key into register 1 or, with set, sets key from it.
func (b *ruleBuilder) meta(key uint32, set bool) {
	e, d := b.expr("meta")
	b.w.u32(unix.NFTA_META_KEY, key)
	if set {
		b.w.u32(unix.NFTA_META_SREG, reg1)
	} else {
		b.w.u32(unix.NFTA_META_DREG, reg1)
	}
	b.done(e, d)
}

// ctMark loads the conntrack mark into register 1 or, with set, sets it.
func (b *ruleBuilder) ctMark(set bool) {
	e, d := b.expr("ct")
	b.w.u32(unix.NFTA_CT_KEY, unix.NFT_CT_MARK)
	if set {
		b.w.u32(unix.NFTA_CT_SREG, reg1)
	} else {
		b.w.u32(unix.NFTA_CT_DREG, reg1)
	}
	b.done(e, d)
}

func (b *ruleBuilder) cmp(op uint32, data []byte) {
	e, d := b.expr("cmp")
	b.w.u32(unix.NFTA_CMP_SREG, reg1)
	b.w.u32(unix.NFTA_CMP_OP, op)
	b.w.value(unix.NFTA_CMP_DATA, data)
	b.done(e, d)
}

func (b *ruleBuilder) cmpEq(data []byte) { b.cmp(unix.NFT_CMP_EQ, data) }

func (b *ruleBuilder) payload(base, off, n uint32) {
	e, d := b.expr("payload")
	b.w.u32(unix.NFTA_PAYLOAD_DREG, reg1)
	b.w.u32(unix.NFTA_PAYLOAD_BASE, base)
	b.w.u32(unix.NFTA_PAYLOAD_OFFSET, off)
	b.w.u32(unix.NFTA_PAYLOAD_LEN, n)
	b.done(e, d)
}

// bitwise computes register 1 = (register 1 & mask) ^ xor.
func (b *ruleBuilder) bitwise(mask, xor []byte) {
	e, d := b.expr("bitwise")
	b.w.u32(unix.NFTA_BITWISE_SREG, reg1)
	b.w.u32(unix.NFTA_BITWISE_DREG, reg1)
	b.w.u32(unix.NFTA_BITWISE_LEN, uint32(len(mask)))
	b.w.value(unix.NFTA_BITWISE_MASK, mask)
	b.w.value(unix.NFTA_BITWISE_XOR, xor)
	b.done(e, d)
}

// lookup matches register 1 against a set, or for vmap jumps to the
// verdict a map holds for it.
func (b *ruleBuilder) lookup(s *nlSet, vmap bool) {
	e, d := b.expr("lookup")
	b.w.u32(unix.NFTA_LOOKUP_SREG, reg1)
	if vmap {
		b.w.u32(unix.NFTA_LOOKUP_DREG, unix.NFT_REG_VERDICT)
	}
	b.w.str(unix.NFTA_LOOKUP_SET, s.name)
	if s.id != 0 {
		b.w.u32(unix.NFTA_LOOKUP_SET_ID, s.id)
	}
	b.done(e, d)
}

func (b *ruleBuilder) verdict(v nlVerdict) {
	e, d := b.expr("immediate")
	b.w.u32(unix.NFTA_IMMEDIATE_DREG, unix.NFT_REG_VERDICT)
	b.w.verdict(unix.NFTA_IMMEDIATE_DATA, v)
	b.done(e, d)
}

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
	b.meta(unix.NFT_META_NFPROTO, false)
	b.cmpEq([]byte{nfprotoValue(f)})
	b.family = f
}

// needL4 emits the meta l4proto dependency unless already established.
func (b *ruleBuilder) needL4(p uint8) {
	if b.l4 == int(p) {
		return
	}
	b.meta(unix.NFT_META_L4PROTO, false)
	b.cmpEq([]byte{p})
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

// loadAddr loads an address into register 1 and returns its length.
func (b *ruleBuilder) loadAddr(f Family, dst bool) uint32 {
	off, n := addrOffset(f, dst)
	b.payload(unix.NFT_PAYLOAD_NETWORK_HEADER, off, n)
	return n
}

func addrBytes(a netip.Addr) []byte { return a.AsSlice() }

// markBytes is a mark in host byte order, as the kernel keeps marks.
func markBytes(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// interval is one range of a big-endian interval set key.
type interval struct {
	from, to []byte // inclusive
	verdict  *nlVerdict
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
func intervalElems(ranges []interval) []setElem {
	out := make([]setElem, 0, 2*len(ranges)+1)
	if len(ranges) > 0 && !isZero(ranges[0].from) {
		out = append(out, setElem{key: make([]byte, len(ranges[0].from)), intervalEnd: true})
	}
	for i, r := range ranges {
		out = append(out, setElem{key: r.from, verdict: r.verdict})
		if isMax(r.to) {
			continue
		}
		end := plusOne(r.to)
		if i+1 < len(ranges) && string(ranges[i+1].from) == string(end) {
			continue
		}
		out = append(out, setElem{key: end, intervalEnd: true})
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

// anonymous queues an anonymous constant set and looks register 1 up in
// it (a verdict map when isMap).
func (b *ruleBuilder) anonymous(key datatype, interval, isMap bool, elems []setElem) error {
	if len(elems) > 2*maxAnonElements {
		return fmt.Errorf("anonymous set with %d elements exceeds %d", len(elems), 2*maxAnonElements)
	}
	s := &nlSet{name: "__set%d", id: b.ids.id(), flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT, key: key,
		size: uint32(len(elems)), userdata: appendUdataU32(nil, udataSetKeyByteOrder, byteOrderBig)}
	if interval {
		s.flags |= unix.NFT_SET_INTERVAL
	}
	if isMap {
		s.name = "__map%d"
		s.flags |= unix.NFT_SET_MAP
	}
	b.anon = append(b.anon, anonSet{s, elems})
	b.lookup(s, isMap)
	return nil
}

// matchRanges compares register 1 (big-endian values) with ranges: equal
// for one value, a gte/lte pair for one range, else an interval set.
func (b *ruleBuilder) matchRanges(key datatype, rs []interval) error {
	switch {
	case len(rs) == 1 && string(rs[0].from) == string(rs[0].to):
		b.cmpEq(rs[0].from)
	case len(rs) == 1:
		b.cmp(unix.NFT_CMP_GTE, rs[0].from)
		b.cmp(unix.NFT_CMP_LTE, rs[0].to)
	default:
		return b.anonymous(key, true, false, intervalElems(rs))
	}
	return nil
}

func addrType(f Family) datatype {
	if f == IPv6 {
		return typeIP6Addr
	}
	return typeIPAddr
}

func (b *ruleBuilder) setMark(ct bool, mask, value uint32) {
	if ct {
		b.ctMark(false)
	} else {
		b.meta(unix.NFT_META_MARK, false)
	}
	b.bitwise(markBytes(^mask), markBytes(value))
	if ct {
		b.ctMark(true)
	} else {
		b.meta(unix.NFT_META_MARK, true)
	}
}

// maskedMark loads the packet or conntrack mark under mask.
func (b *ruleBuilder) maskedMark(ct bool, mask uint32) {
	if ct {
		b.ctMark(false)
	} else {
		b.meta(unix.NFT_META_MARK, false)
	}
	b.bitwise(markBytes(mask), markBytes(0))
}

func verdictOf(v Verdict) (nlVerdict, error) {
	switch v.Kind {
	case Jump:
		return nlVerdict{code: unix.NFT_JUMP, chain: v.Chain}, nil
	case Goto:
		return nlVerdict{code: unix.NFT_GOTO, chain: v.Chain}, nil
	case Return:
		return nlVerdict{code: unix.NFT_RETURN}, nil
	case Accept:
		return nlVerdict{code: nfAccept}, nil
	}
	return nlVerdict{}, fmt.Errorf("invalid verdict kind %d", v.Kind)
}

// ifnameBytes pads an interface name to IFNAMSIZ as nft compares it.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// translate converts one IR expression.
func (b *ruleBuilder) translate(e Expr, named map[string]*nlSet) error {
	switch e := e.(type) {
	case Nfproto:
		b.meta(unix.NFT_META_NFPROTO, false)
		b.cmpEq([]byte{nfprotoValue(e.Family)})
		b.family = e.Family
	case L4Proto:
		b.meta(unix.NFT_META_L4PROTO, false)
		b.cmpEq([]byte{e.Proto})
		b.l4 = int(e.Proto)
	case MarkCmp:
		op := uint32(unix.NFT_CMP_EQ)
		if e.Neq {
			op = unix.NFT_CMP_NEQ
		}
		b.maskedMark(e.Ct, e.Mask)
		b.cmp(op, markBytes(e.Value))
	case IfName:
		if len(e.Name) >= unix.IFNAMSIZ {
			return fmt.Errorf("interface name %q too long", e.Name)
		}
		key := uint32(unix.NFT_META_IIFNAME)
		if e.Out {
			key = unix.NFT_META_OIFNAME
		}
		b.meta(key, false)
		b.cmpEq(ifnameBytes(e.Name))
	case AddrMatch:
		if len(e.Ranges) == 0 || len(e.Ranges) > maxAnonElements {
			return fmt.Errorf("%s: %d address ranges (1..%d allowed)", addrField(e.Family, e.Dst), len(e.Ranges), maxAnonElements)
		}
		b.needFamily(e.Family)
		n := b.loadAddr(e.Family, e.Dst)
		if r := e.Ranges[0]; len(e.Ranges) == 1 && r.prefixBits() > 0 && r.prefixBits() < r.From.BitLen() {
			mask := make([]byte, n)
			for i := 0; i < r.prefixBits(); i++ {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			b.bitwise(mask, make([]byte, n))
			b.cmpEq(addrBytes(r.From))
			return nil
		}
		return b.matchRanges(addrType(e.Family), addrIntervals(e.Ranges))
	case AddrMasked:
		if !e.Mask.IsValid() || !e.Value.IsValid() || familyOf(e.Mask) != e.Family || familyOf(e.Value) != e.Family {
			return fmt.Errorf("%s: mask %s and value %s must be %s addresses", addrField(e.Family, e.Dst), e.Mask, e.Value, e.Family)
		}
		b.needFamily(e.Family)
		n := b.loadAddr(e.Family, e.Dst)
		b.bitwise(addrBytes(e.Mask), make([]byte, n))
		b.cmpEq(addrBytes(e.Value))
	case AddrInSet:
		b.needFamily(e.Family)
		s := named[e.Set]
		if s == nil {
			return fmt.Errorf("set %s is not in the plan", e.Set)
		}
		b.loadAddr(e.Family, e.Dst)
		b.lookup(s, false)
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
		b.payload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, off, 2)
		rs := make([]interval, len(e.Ranges))
		for i, p := range e.Ranges {
			rs[i] = interval{from: be16(p.First), to: be16(p.Last)}
		}
		return b.matchRanges(typeInetService, rs)
	case ICMPv6Types:
		if len(e.Types) == 0 {
			return fmt.Errorf("empty icmpv6 type list")
		}
		b.needFamily(IPv6)
		b.needL4(protoICMPv6)
		b.payload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1)
		if len(e.Types) == 1 {
			b.cmpEq([]byte{e.Types[0]})
			return nil
		}
		elems := make([]setElem, len(e.Types))
		for i, t := range e.Types {
			elems[i] = setElem{key: []byte{t}}
		}
		return b.anonymous(typeICMP6Type, false, false, elems)
	case NumgenVmap:
		if e.Mod == 0 || len(e.Entries) == 0 {
			return fmt.Errorf("numgen map without entries")
		}
		rs := make([]interval, len(e.Entries))
		for i, en := range e.Entries {
			v, err := verdictOf(en.Verdict)
			if err != nil {
				return err
			}
			rs[i] = interval{from: binary.BigEndian.AppendUint32(nil, en.First), to: binary.BigEndian.AppendUint32(nil, en.Last), verdict: &v}
		}
		// numgen yields a host-order value; interval keys are big-endian.
		el, d := b.expr("numgen")
		b.w.u32(unix.NFTA_NG_DREG, reg1)
		b.w.u32(unix.NFTA_NG_MODULUS, e.Mod)
		b.w.u32(unix.NFTA_NG_TYPE, unix.NFT_NG_RANDOM)
		b.w.u32(unix.NFTA_NG_OFFSET, 0)
		b.done(el, d)
		el, d = b.expr("byteorder")
		b.w.u32(unix.NFTA_BYTEORDER_SREG, reg1)
		b.w.u32(unix.NFTA_BYTEORDER_DREG, reg1)
		b.w.u32(unix.NFTA_BYTEORDER_OP, unix.NFT_BYTEORDER_HTON)
		b.w.u32(unix.NFTA_BYTEORDER_LEN, 4)
		b.w.u32(unix.NFTA_BYTEORDER_SIZE, 4)
		b.done(el, d)
		return b.anonymous(typeInteger, true, true, intervalElems(rs))
	case MarkVmap:
		s := named[e.Map]
		if s == nil {
			return fmt.Errorf("map %s is not in the plan", e.Map)
		}
		b.maskedMark(e.Ct, e.Mask)
		b.lookup(s, true)
	case CounterRef:
		el, d := b.expr("objref")
		b.w.u32(unix.NFTA_OBJREF_IMM_TYPE, unix.NFT_OBJECT_COUNTER)
		b.w.str(unix.NFTA_OBJREF_IMM_NAME, e.Name)
		b.done(el, d)
	case Log:
		el, d := b.expr("log")
		b.w.str(unix.NFTA_LOG_PREFIX, e.Prefix)
		b.w.u32(unix.NFTA_LOG_LEVEL, uint32(e.Level))
		b.done(el, d)
	case SetMark:
		b.setMark(e.Ct, e.Mask, e.Value)
	case SetUpdate:
		s := named[e.Set]
		if s == nil {
			return fmt.Errorf("set %s is not in the plan", e.Set)
		}
		b.needFamily(e.Family)
		b.loadAddr(e.Family, false)
		el, d := b.expr("dynset")
		b.w.u32(unix.NFTA_DYNSET_SREG_KEY, reg1)
		b.w.u32(unix.NFTA_DYNSET_OP, unix.NFT_DYNSET_OP_UPDATE)
		b.w.str(unix.NFTA_DYNSET_SET_NAME, s.name)
		if s.id != 0 {
			b.w.u32(unix.NFTA_DYNSET_SET_ID, s.id)
		}
		b.w.u32(unix.NFTA_DYNSET_FLAGS, 0)
		b.done(el, d)
	case SaddrLocal:
		op := uint32(unix.NFT_CMP_EQ)
		if e.Neq {
			op = unix.NFT_CMP_NEQ
		}
		flags := uint32(unix.NFTA_FIB_F_SADDR)
		if e.OnOif {
			flags |= unix.NFTA_FIB_F_OIF
		}
		el, d := b.expr("fib")
		b.w.u32(unix.NFTA_FIB_DREG, reg1)
		b.w.u32(unix.NFTA_FIB_FLAGS, flags)
		b.w.u32(unix.NFTA_FIB_RESULT, unix.NFT_FIB_RESULT_ADDRTYPE)
		b.done(el, d)
		// The address type is a host-order 32-bit value.
		b.cmp(op, binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL))
	case Masquerade:
		b.done(b.expr("masq"))
	case Cgroup:
		el, d := b.expr("socket")
		b.w.u32(nftaSocketDreg, reg1)
		b.w.u32(nftaSocketKey, nftSocketCgroupv2)
		b.w.u32(nftaSocketLevel, e.Level)
		b.done(el, d)
		b.cmpEq(binary.NativeEndian.AppendUint64(nil, e.ID))
	case Verdict:
		v, err := verdictOf(e)
		if err != nil {
			return err
		}
		b.verdict(v)
	default:
		return fmt.Errorf("unknown expression %T", e)
	}
	return nil
}

// translateRule converts a rule's expressions (the content of
// NFTA_RULE_EXPRESSIONS); the anonymous sets must be added to the
// transaction before the rule.
func translateRule(r Rule, ids *setIDs, named map[string]*nlSet) ([]byte, []anonSet, error) {
	b := ruleBuilder{ids: ids, l4: -1}
	for _, e := range r.Exprs {
		if err := b.translate(e, named); err != nil {
			return nil, nil, err
		}
	}
	return b.w.b, b.anon, nil
}

// keyType returns the datatype of a set key.
func keyType(k KeyType) datatype {
	switch k {
	case KeyIPv6:
		return typeIP6Addr
	case KeyMark:
		return typeMark
	}
	return typeIPAddr
}

// translateSet converts a named set's declaration, with the userdata nft
// writes (key byte order, auto-merge) so that it lists the set the same.
func translateSet(s *Set, id uint32) *nlSet {
	out := &nlSet{name: s.Name, id: id, key: keyType(s.Key), timeout: s.Timeout, size: s.Size}
	if s.Interval {
		out.flags |= unix.NFT_SET_INTERVAL
	}
	if s.Timeout != 0 {
		out.flags |= unix.NFT_SET_TIMEOUT
	}
	if s.Dynamic {
		out.flags |= unix.NFT_SET_EVAL
	}
	if s.Verdicts {
		out.flags |= unix.NFT_SET_MAP
	}
	switch {
	case s.Interval:
		out.userdata = appendUdataU32(out.userdata, udataSetKeyByteOrder, byteOrderBig)
	case s.Key == KeyMark:
		out.userdata = appendUdataU32(out.userdata, udataSetKeyByteOrder, byteOrderHost)
	}
	if s.Interval && s.AutoMerge {
		out.userdata = appendUdataU32(out.userdata, udataSetMergeElements, 1)
	}
	return out
}

// setElements converts the managed elements of a set.
func setElements(s *Set) ([]setElem, error) {
	if len(s.Map) > 0 {
		out := make([]setElem, len(s.Map))
		for i, m := range s.Map {
			v, err := verdictOf(m.Verdict)
			if err != nil {
				return nil, fmt.Errorf("map %s key %s: %w", s.Name, hex32(m.Key), err)
			}
			out[i] = setElem{key: markBytes(m.Key), verdict: &v}
		}
		return out, nil
	}
	if !s.Interval {
		out := make([]setElem, 0, len(s.Addrs))
		for _, a := range s.Addrs {
			if a.From != a.To {
				return nil, fmt.Errorf("set %s: range %s needs an interval set", s.Name, a)
			}
			out = append(out, setElem{key: addrBytes(a.From)})
		}
		return out, nil
	}
	return intervalElems(addrIntervals(s.Addrs)), nil
}
