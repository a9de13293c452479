package cli

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
)

// hdr is a message header of n bytes with the given leading bytes and,
// at offset 4 and 8, two host-order 32-bit fields.
func hdr(n int, lead []byte, at4, at8 uint32) []byte {
	b := make([]byte, n)
	copy(b, lead)
	if n >= 8 {
		binary.NativeEndian.PutUint32(b[4:], at4)
	}
	if n >= 12 {
		binary.NativeEndian.PutUint32(b[8:], at8)
	}
	return b
}

// rtHdr is a struct rtmsg.
func rtHdr(family, dstLen, table, proto, scope, typ byte, flags uint32) []byte {
	b := []byte{family, dstLen, 0, 0, table, proto, scope, typ, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[8:], flags)
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func addrBytes(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func TestParseLinkMsg(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want linkMsg
		err  bool
	}{
		{"veth with parent", cat(hdr(ifinfomsgLen, nil, 3, iffUp|iffLowerUp), attr(iflaIfname, []byte("eth1\x00")),
			u32attr(iflaMTU, 1500), u32attr(iflaLink, 4), u32attr(iflaTxQLen, 1000), attr(iflaOperState, []byte{6}),
			u32attr(iflaGroup, 0), u32attr(iflaMaster, 9)),
			linkMsg{Index: 3, Name: "eth1", Flags: iffUp | iffLowerUp, MTU: 1500, Parent: 4, TxQLen: 1000, OperState: 6, Master: 9, NetNsID: -1}, false},
		{"parent in another namespace", cat(hdr(ifinfomsgLen, nil, 5, 0), attr(iflaIfname, []byte("wan")), u32attr(iflaLink, 2), u32attr(iflaNetNsID, 0)),
			linkMsg{Index: 5, Name: "wan", Parent: 2, NetNsID: 0, TxQLen: -1}, false},
		{"unknown attributes ignored", cat(hdr(ifinfomsgLen, nil, 1, 0), attr(99, []byte{1, 2, 3})), linkMsg{Index: 1, TxQLen: -1, NetNsID: -1}, false},
		{"short header", []byte{0, 0, 0}, linkMsg{}, true},
		{"short MTU", cat(hdr(ifinfomsgLen, nil, 1, 0), attr(iflaMTU, []byte{1})), linkMsg{}, true},
		{"empty operstate", cat(hdr(ifinfomsgLen, nil, 1, 0), attr(iflaOperState, nil)), linkMsg{}, true},
	}
	for _, tc := range tests {
		got, err := parseLinkMsg(tc.msg)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestParseAddrMsg(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	cache := make([]byte, 16)
	binary.NativeEndian.PutUint32(cache, 1800)
	binary.NativeEndian.PutUint32(cache[4:], 3600)
	tests := []struct {
		name string
		msg  []byte
		want addrMsg
		err  bool
	}{
		{"IPv4 with broadcast and label", cat(hdr(ifaddrmsgLen, []byte{2, 24, 0x80, 0}, 3, 0), attr(ifaAddress, addrBytes("10.0.1.2")),
			attr(ifaLocal, addrBytes("10.0.1.2")), attr(ifaBroadcast, addrBytes("10.0.1.255")), attr(ifaLabel, []byte("eth1:1\x00")),
			u32attr(ifaFlags, 0x80), attr(ifaCacheinfo, cache)),
			addrMsg{Family: 2, Index: 3, ipAddr: ipAddr{Prefix: p("10.0.1.2/24"), Broadcast: a("10.0.1.255"), Flags: 0x80, Label: "eth1:1", Valid: 3600, Pref: 1800}}, false},
		{"IPv4 point-to-point", cat(hdr(ifaddrmsgLen, []byte{2, 32, 0, 0}, 7, 0), attr(ifaAddress, addrBytes("192.0.2.1")), attr(ifaLocal, addrBytes("100.64.0.2"))),
			addrMsg{Family: 2, Index: 7, ipAddr: ipAddr{Prefix: p("100.64.0.2/32"), Peer: p("192.0.2.1/32")}}, false},
		{"IPv6 address only, link scope", cat(hdr(ifaddrmsgLen, []byte{10, 64, 0, 253}, 2, 0), attr(ifaAddress, addrBytes("fe80::1"))),
			addrMsg{Family: 10, Index: 2, ipAddr: ipAddr{Prefix: p("fe80::1/64"), Scope: 253}}, false},
		{"short header", []byte{2, 24}, addrMsg{}, true},
		{"prefix too long", hdr(ifaddrmsgLen, []byte{2, 33}, 1, 0), addrMsg{}, true},
		{"IPv6 address in an IPv4 message", cat(hdr(ifaddrmsgLen, []byte{2, 24}, 1, 0), attr(ifaLocal, addrBytes("2001:db8::1"))), addrMsg{}, true},
		{"short cache info", cat(hdr(ifaddrmsgLen, []byte{2, 24}, 1, 0), attr(ifaCacheinfo, []byte{1, 2})), addrMsg{}, true},
	}
	for _, tc := range tests {
		got, err := parseAddrMsg(tc.msg)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestParseRouteMsg(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	names := map[int]string{3: "eth1", 4: "eth2"}
	name := func(i int) string { return names[i] }
	nexthop := func(flags, hops byte, idx uint32, attrs ...[]byte) []byte {
		b := cat(hdr(rtnexthopLen, []byte{0, 0, flags, hops}, idx, 0), cat(attrs...))
		binary.NativeEndian.PutUint16(b, uint16(len(b)))
		return b
	}
	tests := []struct {
		name string
		msg  []byte
		want ipRoute
		ok   bool
		err  bool
	}{
		{"default via", cat(rtHdr(2, 0, 254, 4, 0, 1, 4), attr(rtaGateway, addrBytes("10.0.2.1")),
			u32attr(rtaOIF, 4), u32attr(rtaPriority, 20), u32attr(rtaTable, 254)),
			ipRoute{Table: 254, Type: 1, Dst: p("0.0.0.0/0"), Gw: a("10.0.2.1"), Dev: "eth2", Proto: 4, Metric: 20, Flags: 4}, true, false},
		{"link scope with source, table beyond 255", cat(rtHdr(2, 24, 252, 3, 253, 1, 0), attr(rtaDst, addrBytes("10.0.1.0")),
			u32attr(rtaOIF, 3), attr(rtaPrefSrc, addrBytes("10.0.1.2")), u32attr(rtaTable, 1000)),
			ipRoute{Table: 1000, Type: 1, Dst: p("10.0.1.0/24"), Dev: "eth1", Proto: 3, Scope: 253, Src: a("10.0.1.2")}, true, false},
		{"multipath", cat(rtHdr(2, 24, 254, 16, 0, 1, 0), attr(rtaDst, addrBytes("198.51.100.0")),
			attr(rtaMultiPath, cat(nexthop(0, 0, 3, attr(rtaGateway, addrBytes("10.0.1.1"))), nexthop(16, 2, 4, attr(rtaGateway, addrBytes("10.0.2.1")))))),
			ipRoute{Table: 254, Type: 1, Dst: p("198.51.100.0/24"), Proto: 16, Hops: []ipNexthop{
				{Gw: a("10.0.1.1"), Dev: "eth1", Weight: 1}, {Gw: a("10.0.2.1"), Dev: "eth2", Weight: 3, Flags: 16}}}, true, false},
		{"IPv6 unreachable", cat(rtHdr(10, 16, 254, 3, 0, 7, 0), attr(rtaDst, addrBytes("2001:db8::"))),
			ipRoute{Table: 254, Type: 7, Dst: p("2001:db8::/16"), Proto: 3}, true, false},
		{"cloned", rtHdr(2, 0, 254, 2, 0, 1, rtmFCloned), ipRoute{}, false, false},
		{"short header", []byte{2, 0, 0}, ipRoute{}, false, true},
		{"prefix too long", rtHdr(2, 33, 0, 0, 0, 0, 0), ipRoute{}, false, true},
		{"bad gateway", cat(rtHdr(2, 0, 0, 0, 0, 0, 0), attr(rtaGateway, []byte{1, 2, 3})), ipRoute{}, false, true},
		{"truncated nexthop", cat(rtHdr(2, 0, 0, 0, 0, 0, 0), attr(rtaMultiPath, []byte{16, 0, 0, 0})), ipRoute{}, false, true},
		{"nexthop shorter than its header", cat(rtHdr(2, 0, 0, 0, 0, 0, 0), attr(rtaMultiPath, []byte{4, 0, 0, 0, 3, 0, 0, 0})), ipRoute{}, false, true},
	}
	for _, tc := range tests {
		got, ok, err := parseRouteMsg(tc.msg, name)
		if (err != nil) != tc.err || ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s: %+v ok %v err %v; want %+v ok %v error %v", tc.name, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}

func FuzzParseLinkMsg(f *testing.F) {
	f.Add(cat(hdr(ifinfomsgLen, nil, 3, iffUp), attr(iflaIfname, []byte("eth1\x00")), u32attr(iflaMTU, 1500)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := parseLinkMsg(b); err == nil {
			_ = formatAddrs([]ipLink{convLink(l, map[int]*linkMsg{l.Index: &l}, []ipAddr{{Prefix: netip.MustParsePrefix("10.0.0.1/8")}})}, false)
		}
	})
}

func FuzzParseAddrMsg(f *testing.F) {
	f.Add(cat(hdr(ifaddrmsgLen, []byte{2, 24, 0x80, 0}, 3, 0), attr(ifaLocal, addrBytes("10.0.1.2"))))
	f.Add(cat(hdr(ifaddrmsgLen, []byte{10, 64, 0, 253}, 2, 0), attr(ifaAddress, addrBytes("fe80::1"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAddrMsg(b)
		if err != nil || !a.Prefix.IsValid() {
			return
		}
		if a.Prefix.Addr().BitLen() != 8*addrLen(a.Family) {
			t.Fatalf("address %s in a message of family %d", a.Prefix, a.Family)
		}
		_ = formatAddrs([]ipLink{{Name: "x", Addrs: []ipAddr{a.ipAddr}}}, a.Family == afInet6)
	})
}

func FuzzParseRouteMsg(f *testing.F) {
	f.Add(cat(rtHdr(2, 0, 254, 4, 0, 1, 4), attr(rtaGateway, addrBytes("10.0.2.1")), u32attr(rtaOIF, 4)))
	f.Add(cat(rtHdr(2, 24, 254, 16, 0, 1, 0), attr(rtaMultiPath, []byte{16, 0, 0, 0, 3, 0, 0, 0, 8, 0, 5, 0, 10, 0, 1, 1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok, err := parseRouteMsg(b, func(int) string { return "dev" })
		if err != nil || !ok {
			return
		}
		if !r.Dst.IsValid() {
			t.Fatalf("route without a destination: %+v", r)
		}
		_ = formatRoutes([]ipRoute{r})
	})
}
