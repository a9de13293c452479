package rtsync

import (
	"encoding/binary"
	"fmt"
	"iter"
	"net/netip"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

// rtnetlink constants (Linux uapi values). They are spelled out here rather
// than taken from x/sys/unix so the codec builds and fuzzes on every OS.
const (
	afInet  = 2
	afInet6 = 10

	rtmNewLink  = 16
	rtmDelLink  = 17
	rtmGetLink  = 18
	rtmNewAddr  = 20
	rtmDelAddr  = 21
	rtmNewRoute = 24
	rtmDelRoute = 25
	rtmGetRoute = 26
	rtmNewRule  = 32
	rtmDelRule  = 33
	rtmGetRule  = 34

	rtaDst       = 1
	rtaSrc       = 2
	rtaOIF       = 4
	rtaGateway   = 5
	rtaPriority  = 6
	rtaPrefSrc   = 7
	rtaMetrics   = 8
	rtaMultiPath = 9
	rtaFlow      = 11
	rtaTable     = 15
	rtaVia       = 18
	rtaPref      = 20
	rtaEncapType = 21
	rtaEncap     = 22
	rtaNHID      = 30

	rtmFCloned = 0x200

	rtTableCompat = 252

	fraIIFName           = 3
	fraPriority          = 6
	fraFwmark            = 10
	fraSuppressIfgroup   = 13
	fraSuppressPrefixlen = 14
	fraTable             = 15
	fraFwmask            = 16
	fraPad               = 18
	fraProtocol          = 21

	frActToTbl       = 1
	frActBlackhole   = 6
	frActUnreachable = 7

	// fibRuleKnownFlags are fib rule flags that do not change what a rule
	// matches: PERMANENT, UNRESOLVED, IIF_DETACHED, OIF_DETACHED.
	fibRuleKnownFlags = 0x1 | 0x4 | 0x8 | 0x10

	iflaIfname = 3
	iffUp      = 0x1
	iffLowerUp = 0x10000
	afUnspec   = 0

	ifinfomsgLen = 16 // struct ifinfomsg
	rtmsgLen     = 12 // struct rtmsg and struct fib_rule_hdr
	rtnhLen      = 8  // struct rtnexthop
	rtaHdrLen    = 4
)

// errMalformed is wrapped by every decoding error.
// errMalformed is nlsock's, so attribute walks and message decoding report
// one kind of malformed message.
var errMalformed = nlsock.ErrMalformed

var ne = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := rtaHdrLen + len(data)
	b = ne.AppendUint16(b, uint16(l))
	b = ne.AppendUint16(b, typ)
	b = append(b, data...)
	for range align4(l) - l {
		b = append(b, 0)
	}
	return b
}

func appendAttrU32(b []byte, typ uint16, v uint32) []byte {
	var d [4]byte
	ne.PutUint32(d[:], v)
	return appendAttr(b, typ, d[:])
}

func attrU32(typ uint16, data []byte) (uint32, error) {
	if len(data) < 4 {
		return 0, fmt.Errorf("%w: attribute %d: %d bytes, want 4", errMalformed, typ, len(data))
	}
	return ne.Uint32(data), nil
}

func familyOf(af byte) (Family, bool) {
	switch af {
	case afInet:
		return IPv4, true
	case afInet6:
		return IPv6, true
	}
	return 0, false
}

func (f Family) af() byte {
	if f == IPv6 {
		return afInet6
	}
	return afInet
}

func (f Family) unspecified() netip.Addr {
	if f == IPv6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func familyOfAddr(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// addrOf decodes an address of family f.
func addrOf(f Family, typ uint16, data []byte) (netip.Addr, error) {
	switch {
	case f == IPv4 && len(data) == 4:
		return netip.AddrFrom4([4]byte(data)), nil
	case f == IPv6 && len(data) == 16:
		return netip.AddrFrom16([16]byte(data)), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: attribute %d: %d address bytes for %v", errMalformed, typ, len(data), f)
}

// viaOf decodes struct rtvia (a host-order family and an address).
func viaOf(data []byte) (netip.Addr, error) {
	if len(data) < 2 {
		return netip.Addr{}, fmt.Errorf("%w: RTA_VIA: %d bytes", errMalformed, len(data))
	}
	f, ok := familyOf(byte(ne.Uint16(data)))
	if !ok || ne.Uint16(data) > 0xff {
		return netip.Addr{}, fmt.Errorf("%w: RTA_VIA: family %d", errMalformed, ne.Uint16(data))
	}
	return addrOf(f, rtaVia, data[2:])
}

func appendGateway(b []byte, f Family, gw netip.Addr, gwType uint16) []byte {
	if familyOfAddr(gw) == f {
		return appendAttr(b, gwType, gw.AsSlice())
	}
	via := ne.AppendUint16(nil, uint16(familyOfAddr(gw).af()))
	return appendAttr(b, rtaVia, append(via, gw.AsSlice()...))
}

// parseRoute decodes an RTM_NEWROUTE payload (struct rtmsg and attributes).
// ok is false for routes rtsync ignores: other families and cloned routes.
func parseRoute(b []byte) (r Route, ok bool, err error) {
	if len(b) < rtmsgLen {
		return r, false, fmt.Errorf("%w: route message of %d bytes", errMalformed, len(b))
	}
	f, known := familyOf(b[0])
	if !known {
		return r, false, nil
	}
	dstLen, srcLen := int(b[1]), int(b[2])
	if dstLen > f.bits() || srcLen > f.bits() {
		return r, false, fmt.Errorf("%w: prefix lengths %d/%d for %v", errMalformed, dstLen, srcLen, f)
	}
	r = Route{
		Family:   f,
		Tos:      b[3],
		Table:    uint32(b[4]),
		Protocol: b[5],
		Scope:    b[6],
		Type:     b[7],
		Flags:    ne.Uint32(b[8:12]),
	}
	if r.Flags&rtmFCloned != 0 {
		return r, false, nil
	}
	dst, src := f.unspecified(), f.unspecified()
	err = nlsock.ForAttrs(b[rtmsgLen:], func(typ uint16, data []byte) error {
		var err error
		switch typ {
		case rtaDst:
			dst, err = addrOf(f, typ, data)
		case rtaSrc:
			src, err = addrOf(f, typ, data)
		case rtaGateway:
			r.Gateway, err = addrOf(f, typ, data)
		case rtaVia:
			r.Gateway, err = viaOf(data)
		case rtaPrefSrc:
			r.PrefSrc, err = addrOf(f, typ, data)
		case rtaOIF:
			var v uint32
			v, err = attrU32(typ, data)
			r.OIF = int(int32(v))
		case rtaPriority:
			r.Priority, err = attrU32(typ, data)
		case rtaTable:
			r.Table, err = attrU32(typ, data)
		case rtaFlow:
			r.Realm, err = attrU32(typ, data)
		case rtaNHID:
			r.NHID, err = attrU32(typ, data)
		case rtaPref:
			if len(data) < 1 {
				return fmt.Errorf("%w: RTA_PREF empty", errMalformed)
			}
			r.Pref, r.HasPref = data[0], true
		case rtaMetrics:
			r.Metrics = string(data)
		case rtaMultiPath:
			if err = checkMultiPath(f, data); err == nil {
				r.MultiPath = string(data)
			}
		case rtaEncapType:
			if len(data) < 2 {
				return fmt.Errorf("%w: RTA_ENCAP_TYPE: %d bytes", errMalformed, len(data))
			}
			r.EncapType = ne.Uint16(data)
		case rtaEncap:
			r.Encap = string(data)
		}
		return err
	})
	if err != nil {
		return Route{}, false, err
	}
	r.Dst = netip.PrefixFrom(dst, dstLen).Masked()
	if srcLen > 0 {
		r.Src = netip.PrefixFrom(src, srcLen).Masked()
	}
	return r, true, nil
}

// encodeRoute encodes r as an RTM_NEWROUTE/RTM_DELROUTE payload.
func encodeRoute(r Route) []byte {
	b := make([]byte, rtmsgLen, 96+len(r.Metrics)+len(r.MultiPath)+len(r.Encap))
	b[0] = r.Family.af()
	if r.Dst.IsValid() {
		b[1] = byte(r.Dst.Bits())
	}
	if r.Src.IsValid() {
		b[2] = byte(r.Src.Bits())
	}
	b[3] = r.Tos
	b[4] = rtTableCompat
	if r.Table < 256 {
		b[4] = byte(r.Table)
	}
	b[5], b[6], b[7] = r.Protocol, r.Scope, r.Type
	ne.PutUint32(b[8:12], r.Flags)
	b = appendAttrU32(b, rtaTable, r.Table)
	if r.Dst.IsValid() && r.Dst.Bits() > 0 {
		b = appendAttr(b, rtaDst, r.Dst.Addr().AsSlice())
	}
	if r.Src.IsValid() && r.Src.Bits() > 0 {
		b = appendAttr(b, rtaSrc, r.Src.Addr().AsSlice())
	}
	if r.Priority != 0 {
		b = appendAttrU32(b, rtaPriority, r.Priority)
	}
	if r.NHID != 0 {
		// A nexthop object excludes every other nexthop attribute.
		b = appendAttrU32(b, rtaNHID, r.NHID)
	} else {
		if r.OIF != 0 {
			b = appendAttrU32(b, rtaOIF, uint32(r.OIF))
		}
		if r.Gateway.IsValid() {
			b = appendGateway(b, r.Family, r.Gateway, rtaGateway)
		}
		if r.MultiPath != "" {
			b = appendAttr(b, rtaMultiPath, []byte(r.MultiPath))
		}
	}
	if r.PrefSrc.IsValid() {
		b = appendAttr(b, rtaPrefSrc, r.PrefSrc.AsSlice())
	}
	if r.Metrics != "" {
		b = appendAttr(b, rtaMetrics, []byte(r.Metrics))
	}
	if r.Realm != 0 {
		b = appendAttrU32(b, rtaFlow, r.Realm)
	}
	if r.HasPref {
		b = appendAttr(b, rtaPref, []byte{r.Pref})
	}
	if r.EncapType != 0 || r.Encap != "" {
		b = appendAttr(b, rtaEncapType, ne.AppendUint16(nil, r.EncapType))
		b = appendAttr(b, rtaEncap, []byte(r.Encap))
	}
	return b
}

// encodeRouteDump encodes the request of a dump of every route of family f.
func encodeRouteDump(f Family) []byte {
	b := make([]byte, rtmsgLen)
	b[0] = f.af()
	return b
}

// nexthop is one entry of RTA_MULTIPATH.
type nexthop struct {
	flags   uint8
	hops    uint8 // weight − 1
	ifindex int
	gateway netip.Addr
}

// checkMultiPath validates an RTA_MULTIPATH payload of family f.
func checkMultiPath(f Family, data []byte) error {
	return walkMultiPath(f, data, func(int, nexthop) bool { return true })
}

// walkMultiPath calls fn with the offset and decoded content of every
// struct rtnexthop in data until fn returns false.
func walkMultiPath(f Family, data []byte, fn func(off int, nh nexthop) bool) error {
	for off := 0; off < len(data); {
		rest := data[off:]
		if len(rest) < rtnhLen {
			return fmt.Errorf("%w: RTA_MULTIPATH: %d trailing bytes", errMalformed, len(rest))
		}
		l := int(ne.Uint16(rest[0:2]))
		if l < rtnhLen || l > len(rest) {
			return fmt.Errorf("%w: RTA_MULTIPATH: nexthop length %d with %d bytes left", errMalformed, l, len(rest))
		}
		nh := nexthop{flags: rest[2], hops: rest[3], ifindex: int(int32(ne.Uint32(rest[4:8])))}
		err := nlsock.ForAttrs(rest[rtnhLen:l], func(typ uint16, d []byte) error {
			var err error
			switch typ {
			case rtaGateway:
				nh.gateway, err = addrOf(f, typ, d)
			case rtaVia:
				nh.gateway, err = viaOf(d)
			}
			return err
		})
		if err != nil {
			return err
		}
		if !fn(off, nh) {
			return nil
		}
		off += align4(l)
	}
	return nil
}

// nexthops iterates over the nexthops of a validated RTA_MULTIPATH payload.
func nexthops(f Family, mp string) iter.Seq[nexthop] {
	return func(yield func(nexthop) bool) {
		if mp == "" {
			return
		}
		_ = walkMultiPath(f, []byte(mp), func(_ int, nh nexthop) bool { return yield(nh) })
	}
}

// normalizeMultiPath clears every nexthop flag but onlink.
func normalizeMultiPath(f Family, mp string) string {
	b := []byte(mp)
	_ = walkMultiPath(f, b, func(off int, nh nexthop) bool {
		b[off+2] = nh.flags & rtnhFOnlink
		return true
	})
	return string(b)
}

// parseRule decodes an RTM_NEWRULE payload (struct fib_rule_hdr and
// attributes). ok is false for families rtsync ignores.
func parseRule(b []byte) (r Rule, ok bool, err error) {
	if len(b) < rtmsgLen {
		return r, false, fmt.Errorf("%w: rule message of %d bytes", errMalformed, len(b))
	}
	f, known := familyOf(b[0])
	if !known {
		return r, false, nil
	}
	r = Rule{Family: f, Table: uint32(b[4])}
	flags := ne.Uint32(b[8:12])
	r.Unmanaged = b[1] != 0 || b[2] != 0 || b[3] != 0 || flags&^fibRuleKnownFlags != 0
	switch b[7] {
	case frActToTbl:
		r.Action = ActionLookup
	case frActBlackhole:
		r.Action = ActionBlackhole
	case frActUnreachable:
		r.Action = ActionUnreachable
	default:
		r.Action, r.Unmanaged = ActionOther, true
	}
	var mark, mask uint32
	var hasMark, hasMask bool
	err = nlsock.ForAttrs(b[rtmsgLen:], func(typ uint16, data []byte) error {
		var err error
		switch typ {
		case fraPriority:
			r.Priority, err = attrU32(typ, data)
		case fraIIFName:
			r.IIF = nlsock.CString(data)
		case fraFwmark:
			mark, err = attrU32(typ, data)
			hasMark = true
		case fraFwmask:
			mask, err = attrU32(typ, data)
			hasMask = true
		case fraTable:
			r.Table, err = attrU32(typ, data)
		case fraSuppressIfgroup, fraSuppressPrefixlen:
			var v uint32
			v, err = attrU32(typ, data)
			if v != 0xffffffff {
				r.Unmanaged = true
			}
		case fraProtocol, fraPad:
		default:
			r.Unmanaged = true
		}
		return err
	})
	if err != nil {
		return Rule{}, false, err
	}
	switch {
	case hasMask:
		r.Mark, r.Mask = mark, mask
		if mask == 0 && mark != 0 {
			r.Unmanaged = true // matches only mark 0: not a shape of ours
		}
	case hasMark && mark != 0:
		r.Mark, r.Mask = mark, 0xffffffff
	}
	if r.Action != ActionLookup {
		r.Table = 0
	}
	return r, true, nil
}

// encodeRule encodes r as an RTM_NEWRULE/RTM_DELRULE payload.
func encodeRule(r Rule) []byte {
	b := make([]byte, rtmsgLen, 64)
	b[0] = r.Family.af()
	switch r.Action {
	case ActionLookup:
		b[7] = frActToTbl
		b[4] = rtTableCompat
		if r.Table < 256 {
			b[4] = byte(r.Table)
		}
	case ActionBlackhole:
		b[7] = frActBlackhole
	case ActionUnreachable:
		b[7] = frActUnreachable
	}
	b = appendAttrU32(b, fraPriority, r.Priority)
	if r.IIF != "" {
		b = appendAttr(b, fraIIFName, append([]byte(r.IIF), 0))
	}
	if r.Mask != 0 {
		b = appendAttrU32(b, fraFwmark, r.Mark)
		b = appendAttrU32(b, fraFwmask, r.Mask)
	}
	if r.Action == ActionLookup {
		b = appendAttrU32(b, fraTable, r.Table)
	}
	return b
}

// encodeRuleDump encodes the request of a dump of every rule of family f.
func encodeRuleDump(f Family) []byte {
	b := make([]byte, rtmsgLen)
	b[0] = f.af()
	return b
}

// parseLink decodes an RTM_NEWLINK/RTM_DELLINK payload (struct ifinfomsg
// and attributes). ok is false for messages of a protocol family (the
// bridge's port messages): they do not create or delete a device.
func parseLink(b []byte) (l Link, ok bool, err error) {
	if len(b) < ifinfomsgLen {
		return l, false, fmt.Errorf("%w: link message of %d bytes", errMalformed, len(b))
	}
	if b[0] != afUnspec {
		return l, false, nil
	}
	flags := ne.Uint32(b[8:12])
	l = Link{Index: int(int32(ne.Uint32(b[4:8]))), Up: flags&iffUp != 0, Carrier: flags&iffLowerUp != 0}
	err = nlsock.ForAttrs(b[ifinfomsgLen:], func(typ uint16, data []byte) error {
		if typ == iflaIfname {
			l.Name = nlsock.CString(data)
		}
		return nil
	})
	if err != nil {
		return Link{}, false, err
	}
	return l, true, nil
}

// encodeLinkDump encodes the request of a dump of every link.
func encodeLinkDump() []byte { return make([]byte, ifinfomsgLen) }
