package rtsync

import (
	"errors"
	"net/netip"
	"testing"
)

// codecRoutes are routes of every shape rtsync copies.
func codecRoutes(t testing.TB) []Route {
	tp := lab
	rs := append(tp.routes(t, IPv4, lanMain4), tp.routes(t, IPv6, lanMain6)...)
	rs = append(rs,
		tp.route(t, IPv4, 1, "172.16.0.0/12 proto static nexthop via 203.0.113.1 dev eth1 weight 1 nexthop via 203.0.113.2 dev eth1 weight 3"),
		tp.route(t, IPv4, 7, "10.9.0.0/16 via inet6 fe80::5 dev eth1 proto static metric 3 onlink"),
		tp.route(t, IPv4, 70000, "10.8.0.0/16 dev tun0 proto 99 scope link mtu 1400"),
		tp.route(t, IPv6, 2, "default from 2001:db8::/48 via fe80::1 dev eth1 proto ra metric 1024 pref high"),
	)
	nh := tp.route(t, IPv4, tableMain, "10.7.0.0/16 proto static metric 5")
	nh.NHID = 12
	rs = append(rs, nh)
	return rs
}

func TestRouteRoundTrip(t *testing.T) {
	for _, r := range codecRoutes(t) {
		got, ok, err := parseRoute(encodeRoute(r))
		if err != nil || !ok {
			t.Fatalf("%s: parse(encode) = ok %v, err %v", r.format(nil), ok, err)
		}
		if got != r {
			t.Errorf("round trip changed the route:\n got %s\nwant %s", got.format(nil), r.format(nil))
		}
	}
}

func TestRuleRoundTrip(t *testing.T) {
	st, err := Desired(Input{Mask: 0x3f00, Interfaces: defaultInterfaces()}, Snapshot{Links: lab.links()})
	if err != nil {
		t.Fatal(err)
	}
	rules := append(st.Rules,
		Rule{Family: IPv6, Priority: 1002, IIF: "pppoe-wan", Action: ActionLookup, Table: 300},
		Rule{Family: IPv4, Priority: 5, Mark: 0x10, Mask: 0xffffffff, Action: ActionLookup, Table: 7},
	)
	for _, r := range rules {
		got, ok, err := parseRule(encodeRule(r))
		if err != nil || !ok {
			t.Fatalf("%s: parse(encode) = ok %v, err %v", r, ok, err)
		}
		if got != r {
			t.Errorf("round trip changed the rule:\n got %s\nwant %s", got, r)
		}
	}
}

func TestParseRuleUnmanaged(t *testing.T) {
	base := encodeRule(Rule{Family: IPv4, Priority: 2001, Mark: 0x100, Mask: 0x3f00, Action: ActionLookup, Table: 1})
	tests := []struct {
		name string
		msg  func() []byte
	}{
		{"source prefix", func() []byte { b := clone(base); b[2] = 24; return appendAttr(b, 2, []byte{10, 0, 0, 0}) }},
		{"tos", func() []byte { b := clone(base); b[3] = 0x10; return b }},
		{"invert", func() []byte { b := clone(base); ne.PutUint32(b[8:], 2); return b }},
		{"goto", func() []byte { b := clone(base); b[7] = 2; return b }},
		{"prohibit", func() []byte { b := clone(base); b[7] = 8; return b }},
		{"oif", func() []byte { return appendAttr(clone(base), 17, []byte("eth0\x00")) }},
		{"uid range", func() []byte { return appendAttr(clone(base), 20, make([]byte, 8)) }},
		{"suppress prefixlen", func() []byte { return appendAttrU32(clone(base), fraSuppressPrefixlen, 0) }},
		{"mark with a zero mask", func() []byte {
			b := encodeRule(Rule{Family: IPv4, Priority: 2001, Action: ActionLookup, Table: 1})
			return appendAttrU32(appendAttrU32(b, fraFwmark, 5), fraFwmask, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok, err := parseRule(tt.msg())
			if err != nil || !ok {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if !r.Unmanaged {
				t.Errorf("%s parsed as managed: %s", tt.name, r)
			}
		})
	}
	// Ignorable attributes keep the rule managed.
	b := appendAttr(clone(base), fraProtocol, []byte{4})
	b = appendAttrU32(b, fraSuppressIfgroup, 0xffffffff)
	if r, _, err := parseRule(b); err != nil || r.Unmanaged {
		t.Errorf("protocol and unset suppress_ifgroup made the rule unmanaged: %s, %v", r, err)
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func TestParseMalformed(t *testing.T) {
	good := encodeRoute(lab.route(t, IPv4, 1, "10.0.0.0/8 via 192.168.1.254 dev br-lan proto static metric 5"))
	tests := []struct {
		name string
		msg  []byte
	}{
		{"short header", good[:11]},
		{"attribute longer than message", append(clone(good[:12]), 0xff, 0, 1, 0)},
		{"attribute length below header", append(clone(good[:12]), 2, 0, 1, 0)},
		{"ipv6 address in ipv4 route", appendAttr(clone(good[:12]), rtaGateway, make([]byte, 16))},
		{"short u32", appendAttr(clone(good[:12]), rtaOIF, []byte{1, 2})},
		{"prefix too long", func() []byte { b := clone(good); b[1] = 33; return b }()},
		{"bad via family", appendAttr(clone(good[:12]), rtaVia, []byte{99, 0, 1, 2, 3, 4})},
		{"truncated nexthop", appendAttr(clone(good[:12]), rtaMultiPath, []byte{16, 0, 0, 0, 1, 0, 0, 0})},
		{"nexthop shorter than its header", appendAttr(clone(good[:12]), rtaMultiPath, []byte{4, 0, 0, 0, 1, 0, 0, 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseRoute(tt.msg)
			if !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v, want errMalformed", err)
			}
		})
	}
	if _, _, err := parseRule(good[:5]); !errors.Is(err, errMalformed) {
		t.Errorf("short rule: err = %v", err)
	}
	// Unknown families and cloned routes are skipped, not errors.
	other := clone(good)
	other[0] = 28 // AF_MPLS
	if _, ok, err := parseRoute(other); ok || err != nil {
		t.Errorf("MPLS route: ok %v err %v", ok, err)
	}
	cloned := clone(good)
	ne.PutUint32(cloned[8:], rtmFCloned)
	if _, ok, err := parseRoute(cloned); ok || err != nil {
		t.Errorf("cloned route: ok %v err %v", ok, err)
	}
}

func TestNormalizeMultiPath(t *testing.T) {
	r := lab.route(t, IPv4, 1, "172.16.0.0/12 proto static nexthop via 203.0.113.1 dev eth1 weight 1 nexthop via 203.0.113.2 dev eth2 weight 2")
	b := []byte(r.MultiPath)
	b[2] = 16 | rtnhFOnlink | 1 // linkdown, onlink, dead
	r.MultiPath = string(b)
	r.Flags = 16
	n := normalize(r)
	var flags []uint8
	for nh := range nexthops(n.Family, n.MultiPath) {
		flags = append(flags, nh.flags)
	}
	if len(flags) != 2 || flags[0] != rtnhFOnlink || flags[1] != 0 || n.Flags != 0 {
		t.Errorf("normalized flags: route %#x nexthops %v", n.Flags, flags)
	}
	var devs []int
	for nh := range nexthops(n.Family, n.MultiPath) {
		devs = append(devs, nh.ifindex)
	}
	if len(devs) != 2 || devs[0] != 3 || devs[1] != 4 {
		t.Errorf("devices %v, want [3 4]", devs)
	}
	owners := map[int]int{3: 1, 4: 2}
	if got := routeOwner(n, owners); got != -1 {
		t.Errorf("owner of a route over two WANs = %d, want -1", got)
	}
	if got := routeOwner(n, map[int]int{4: 2}); got != 2 {
		t.Errorf("owner with one mapped nexthop = %d, want 2", got)
	}
}

func TestRouteUsesDevice(t *testing.T) {
	multi := lab.route(t, IPv4, 1, "172.16.0.0/12 proto static nexthop via 203.0.113.1 dev eth1 weight 1 nexthop via 203.0.113.2 dev eth2 weight 2")
	single := lab.route(t, IPv4, 1, "10.0.0.0/8 via 192.168.1.254 dev br-lan proto static metric 5")
	for _, tc := range []struct {
		r    Route
		dev  int
		want bool
	}{
		{multi, 3, true}, {multi, 4, true}, {multi, 2, false},
		{single, single.OIF, true}, {single, single.OIF + 1, false},
	} {
		if got := tc.r.UsesDevice(tc.dev); got != tc.want {
			t.Errorf("%s uses device %d: %v, want %v", tc.r.format(nil), tc.dev, got, tc.want)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, r := range codecRoutes(f) {
		f.Add(encodeRoute(r))
	}
	f.Add([]byte{})
	f.Add(make([]byte, rtmsgLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok, err := parseRoute(b)
		if err != nil || !ok {
			return
		}
		_ = r.format(nil)
		_ = normalize(r)
		want := r
		if want.NHID != 0 {
			// A nexthop object excludes the other nexthop attributes.
			want.OIF, want.Gateway, want.MultiPath = 0, netip.Addr{}, ""
		}
		got, ok, err := parseRoute(encodeRoute(r))
		if err != nil || !ok {
			t.Fatalf("re-parse of %s: ok %v err %v", r.format(nil), ok, err)
		}
		if got != want {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
		}
	})
}

func FuzzParseRule(f *testing.F) {
	st, err := Desired(Input{Mask: 0x3f00, Interfaces: defaultInterfaces()}, Snapshot{Links: lab.links()})
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range st.Rules {
		f.Add(encodeRule(r))
	}
	f.Add(appendAttr(encodeRule(st.Rules[0]), 20, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok, err := parseRule(b)
		if err != nil || !ok {
			return
		}
		_ = r.String()
		if r.Unmanaged {
			return
		}
		got, ok, err := parseRule(encodeRule(r))
		if err != nil || !ok || got != r {
			t.Fatalf("round trip of %s: got %s ok %v err %v", r, got, ok, err)
		}
	})
}

// linkMsg is an RTM_NEWLINK payload as the kernel sends it.
func linkMsg(family byte, index int32, flags uint32, name string) []byte {
	b := make([]byte, ifinfomsgLen)
	b[0] = family
	ne.PutUint32(b[4:], uint32(index))
	ne.PutUint32(b[8:], flags)
	b = appendAttrU32(b, 4, 1500) // IFLA_MTU, ignored
	if name != "" {
		b = appendAttr(b, iflaIfname, append([]byte(name), 0))
	}
	return b
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want Link
		ok   bool
		err  bool
	}{
		{"up with carrier", linkMsg(afUnspec, 3, iffUp|iffLowerUp|0x40, "eth1"), Link{Index: 3, Name: "eth1", Up: true, Carrier: true}, true, false},
		{"up without carrier", linkMsg(afUnspec, 4, iffUp, "wan"), Link{Index: 4, Name: "wan", Up: true}, true, false},
		{"down", linkMsg(afUnspec, 5, 0, "lan0"), Link{Index: 5, Name: "lan0"}, true, false},
		{"bridge port message", linkMsg(7, 3, iffUp, "eth1"), Link{}, false, false},
		{"short header", linkMsg(afUnspec, 3, 0, "")[:ifinfomsgLen-1], Link{}, false, true},
		{"bad attribute", append(linkMsg(afUnspec, 3, 0, "x"), 0xff, 0, 3, 0), Link{}, false, true},
	}
	for _, tc := range tests {
		got, ok, err := parseLink(tc.msg)
		if got != tc.want || ok != tc.ok || (err != nil) != tc.err || (err != nil && !errors.Is(err, errMalformed)) {
			t.Errorf("%s: %+v ok %v err %v, want %+v ok %v err %v", tc.name, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(linkMsg(afUnspec, 3, iffUp|iffLowerUp, "eth1"))
	f.Add(linkMsg(7, 3, iffUp, "eth1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, ok, err := parseLink(b)
		if err != nil && !errors.Is(err, errMalformed) {
			t.Fatalf("error %v does not wrap errMalformed", err)
		}
		if !ok {
			return
		}
		// Re-encoded, it decodes to the same link.
		var flags uint32
		if l.Up {
			flags |= iffUp
		}
		if l.Carrier {
			flags |= iffLowerUp
		}
		if got, ok, err := parseLink(linkMsg(afUnspec, int32(l.Index), flags, l.Name)); !ok || err != nil || got != l {
			t.Fatalf("round trip of %+v: %+v ok %v err %v", l, got, ok, err)
		}
	})
}
