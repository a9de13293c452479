package nft

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestAddrRangeString(t *testing.T) {
	for _, tt := range []struct{ from, to, want string }{
		{"10.0.0.0", "10.255.255.255", "10.0.0.0/8"},
		{"192.168.1.1", "192.168.1.1", "192.168.1.1"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"10.0.0.0", "10.2.255.255", "10.0.0.0-10.2.255.255"},
		{"10.0.0.1", "10.0.0.2", "10.0.0.1-10.0.0.2"},
		{"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32"},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
		{"2001:db8::1", "2001:db8::1", "2001:db8::1"},
		{"2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64"},
		{"2001:db8::1", "2001:db8::3", "2001:db8::1-2001:db8::3"},
	} {
		r := AddrRange{netip.MustParseAddr(tt.from), netip.MustParseAddr(tt.to)}
		if got := r.String(); got != tt.want {
			t.Errorf("AddrRange{%s, %s} = %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestMergePrefixes(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"192.168.1.0/24", "192.168.1.1/32"}, "192.168.1.0/24"},
		{[]string{"10.0.0.0/9", "10.128.0.0/9"}, "10.0.0.0/8"},
		{[]string{"10.0.0.0/9", "10.128.0.0/10"}, "10.0.0.0-10.191.255.255"},
		{[]string{"224.0.0.0/3", "10.0.0.0/8", "127.0.0.0/8"}, "10.0.0.0/8 127.0.0.0/8 224.0.0.0/3"},
		{[]string{"192.168.1.77/24"}, "192.168.1.0/24"},
		{[]string{"0.0.0.0/0", "10.0.0.0/8"}, "0.0.0.0/0"},
		{[]string{"255.255.255.255/32", "255.255.255.254/32"}, "255.255.255.254/31"},
		{[]string{"fe80::/64", "fd00::/64", "fd00::1/128"}, "fd00::/64 fe80::/64"},
		{[]string{"::/1", "8000::/1"}, "::/0"},
	} {
		var got []string
		for _, r := range mergePrefixes(pfx(tt.in...)) {
			got = append(got, r.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("mergePrefixes(%v) = %v, want %s", tt.in, got, tt.want)
		}
	}
	if mergePrefixes(nil) != nil {
		t.Error("mergePrefixes(nil) != nil")
	}
}

// TestMergePrefixesDifferential checks random prefix lists against the
// obvious membership test: an address is in the merged ranges exactly when
// some prefix contains it, and the ranges are sorted, disjoint and not
// adjacent.
func TestMergePrefixesDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		var ps []netip.Prefix
		for range 1 + rng.IntN(8) {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			ps = append(ps, netip.PrefixFrom(a, 14+rng.IntN(19)))
		}
		rs := mergePrefixes(ps)
		for i := 1; i < len(rs); i++ {
			if u128From(rs[i-1].To).add1().cmp(u128From(rs[i].From)) >= 0 {
				t.Fatalf("ranges %v and %v overlap or touch (input %v)", rs[i-1], rs[i], ps)
			}
		}
		for range 200 {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			want := slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
			got := slices.ContainsFunc(rs, func(r AddrRange) bool { return r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0 })
			if got != want {
				t.Fatalf("%s: in merged %v = %v, in prefixes %v = %v", a, rs, got, ps, want)
			}
		}
	}
}

func FuzzMergePrefixes(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0, 8, 10, 1, 0, 0, 16}, false)
	f.Add([]byte{0, 0, 0, 0, 0}, false)
	f.Add([]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 128}, true)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		n := 5
		if v6 {
			n = 17
		}
		var ps []netip.Prefix
		for ; len(data) >= n; data = data[n:] {
			a, _ := netip.AddrFromSlice(data[:n-1])
			ps = append(ps, netip.PrefixFrom(a, int(data[n-1])%(a.BitLen()+1)))
		}
		rs := mergePrefixes(ps)
		for _, p := range ps {
			p = p.Masked()
			if !slices.ContainsFunc(rs, func(r AddrRange) bool { return r.From.Compare(p.Addr()) <= 0 && p.Addr().Compare(r.To) <= 0 }) {
				t.Fatalf("%s lost in %v", p, rs)
			}
		}
		for i, r := range rs {
			if r.To.Less(r.From) || i > 0 && !rs[i-1].To.Less(r.From) {
				t.Fatalf("bad ranges %v", rs)
			}
			_ = r.String()
		}
	})
}

func TestNftAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::", "::"},
		{"::1", "::1"},
		{"::ff:1", "::0.255.0.1"},
		{"::c000:201", "::192.0.2.1"},
		{"::1:0:0", "::1:0:0"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
		{"ffff:ffff::1", "ffff:ffff::1"},
		{"2001:db8::1", "2001:db8::1"},
	} {
		if got := nftAddr(netip.MustParseAddr(tt.in)); got != tt.want {
			t.Errorf("nftAddr(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskedAddr(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		addr, mask string
		valid      bool
		prefix     string // "" when not a prefix
		in, out    []string
	}{
		{"0.0.0.1", "0.0.0.1", true, "", []string{"10.0.0.1", "192.168.1.255"}, []string{"10.0.0.2", "0.0.0.0", "::1"}},
		{"198.51.100.1", "255.255.255.1", true, "", []string{"198.51.100.1", "198.51.100.3"}, []string{"198.51.100.2", "198.51.100.4", "198.51.101.1"}},
		{"198.51.100.7", "255.255.255.0", true, "198.51.100.0/24", []string{"198.51.100.9"}, []string{"198.51.101.9"}},
		{"10.1.2.3", "0.0.0.0", true, "0.0.0.0/0", []string{"8.8.8.8"}, []string{"2001:db8::1"}},
		{"10.1.2.3", "255.255.255.255", true, "10.1.2.3/32", []string{"10.1.2.3"}, []string{"10.1.2.4"}},
		{"2001:db8::1", "ffff:ffff::1", true, "", []string{"2001:db8:1:2:3::5"}, []string{"2001:db8::2", "2001:db9::1"}},
		{"2001:db8::", "ffff:ffff::", true, "2001:db8::/32", []string{"2001:db8:1::"}, nil},
		{"10.0.0.1", "ffff::", false, "", nil, []string{"10.0.0.1"}},
		{"", "", false, "", nil, []string{"10.0.0.1"}},
	}
	for _, tt := range tests {
		var m MaskedAddr
		if tt.addr != "" {
			m = MaskedAddr{Addr: a(tt.addr), Mask: a(tt.mask)}
		}
		if m.valid() != tt.valid {
			t.Errorf("%v: valid = %v", m, !tt.valid)
		}
		if !tt.valid {
			for _, x := range tt.out {
				if m.Contains(a(x)) {
					t.Errorf("invalid %v contains %s", m, x)
				}
			}
			continue
		}
		p, ok := m.prefix()
		if ok != (tt.prefix != "") || ok && p != netip.MustParsePrefix(tt.prefix) {
			t.Errorf("%v: prefix = %v, %v; want %q", m, p, ok, tt.prefix)
		}
		for _, x := range tt.in {
			if !m.Contains(a(x)) {
				t.Errorf("%v does not contain %s", m, x)
			}
		}
		for _, x := range tt.out {
			if m.Contains(a(x)) {
				t.Errorf("%v contains %s", m, x)
			}
		}
	}
	if got := (MaskedAddr{Addr: a("0.0.0.1"), Mask: a("0.0.0.1")}).String(); got != "0.0.0.1/0.0.0.1" {
		t.Errorf("String = %q", got)
	}
}

// TestMaskedAddrDifferential compares Contains, and prefix where the mask
// is contiguous, with the byte-wise definition for random masks (half of
// them prefixes).
func TestMaskedAddrDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	for range 2000 {
		n := []int{4, 16}[rng.IntN(2)]
		mask := random(n)
		if rng.IntN(2) == 0 { // a prefix mask
			bits := rng.IntN(8*n + 1)
			for i := range mask {
				mask[i] = byte(uint16(0xff00) >> min(8, max(0, bits-8*i)))
			}
		}
		var m MaskedAddr
		m.Addr, _ = netip.AddrFromSlice(random(n))
		m.Mask, _ = netip.AddrFromSlice(mask)
		x, _ := netip.AddrFromSlice(random(n))
		if rng.IntN(4) == 0 { // often a match: x equals Addr under the mask
			xb, ab := x.AsSlice(), m.Addr.AsSlice()
			for i := range xb {
				xb[i] = xb[i]&^mask[i] | ab[i]&mask[i]
			}
			x, _ = netip.AddrFromSlice(xb)
		}
		want := true
		xb, ab := x.AsSlice(), m.Addr.AsSlice()
		for i := range xb {
			want = want && xb[i]&mask[i] == ab[i]&mask[i]
		}
		if got := m.Contains(x); got != want {
			t.Fatalf("%v contains %s = %v, want %v", m, x, got, want)
		}
		if p, ok := m.prefix(); ok && p.Contains(x) != want {
			t.Fatalf("%v as prefix %v contains %s = %v, want %v", m, p, x, !want, want)
		}
	}
}

func TestUserRuleAddrMatches(t *testing.T) {
	a := netip.MustParseAddr
	r := UserRule{
		SrcIP:      pfx("10.0.0.0/8"),
		SrcMasked:  []MaskedAddr{{Addr: a("0.0.0.1"), Mask: a("0.0.0.1")}},
		DestMasked: []MaskedAddr{{Addr: a("2001:db8::1"), Mask: a("ffff:ffff::1")}},
	}
	for _, tt := range []struct {
		src, dst string
		srcOK    bool
		dstOK    bool
	}{
		{"10.0.0.2", "2001:db8::3", true, true},
		{"192.168.1.3", "2001:db8::2", true, false},
		{"192.168.1.2", "2001:db9::1", false, false},
		{"", "", false, false},
	} {
		var src, dst netip.Addr
		if tt.src != "" {
			src, dst = a(tt.src), a(tt.dst)
		}
		if r.SrcMatches(src) != tt.srcOK || r.DestMatches(dst) != tt.dstOK {
			t.Errorf("SrcMatches(%v) = %v, DestMatches(%v) = %v; want %v, %v", src, r.SrcMatches(src), dst, r.DestMatches(dst), tt.srcOK, tt.dstOK)
		}
	}
	var any UserRule
	if !any.SrcMatches(netip.Addr{}) || !any.DestMatches(a("::1")) {
		t.Error("a rule without address options does not match every address")
	}
}

func TestMergePorts(t *testing.T) {
	got := mergePorts([]PortRange{{443, 443}, {80, 80}, {1024, 2048}, {2049, 3000}, {81, 81}, {20, 10}})
	want := []PortRange{{10, 20}, {80, 81}, {443, 443}, {1024, 3000}}
	if !slices.Equal(got, want) {
		t.Errorf("mergePorts = %v, want %v", got, want)
	}
	if got := mergePorts([]PortRange{{65535, 65535}, {0, 65535}}); !slices.Equal(got, []PortRange{{0, 65535}}) {
		t.Errorf("mergePorts full = %v", got)
	}
}

func TestParseProto(t *testing.T) {
	for _, tt := range []struct {
		in    string
		proto uint8
		ok    bool
		err   bool
	}{
		{"all", 0, false, false}, {"", 0, false, false}, {"tcp", 6, true, false}, {"UDP", 17, true, false},
		{"icmp", 1, true, false}, {"icmpv6", 58, true, false}, {"ipv6-icmp", 58, true, false},
		{"41", 41, true, false}, {"0", 0, true, false}, {"255", 255, true, false},
		{"256", 0, false, true}, {"bogus", 0, false, true}, {"-1", 0, false, true},
	} {
		p, ok, err := ParseProto(tt.in)
		if p != tt.proto || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("ParseProto(%q) = %d, %v, %v; want %d, %v, err=%v", tt.in, p, ok, err, tt.proto, tt.ok, tt.err)
		}
	}
}

func FuzzParseProto(f *testing.F) {
	for _, s := range []string{"tcp", "17", "all", "ICMPv6", "300", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok, err := ParseProto(s)
		if err != nil {
			return
		}
		if !ok {
			return
		}
		// A parsed protocol prints as a name or number that parses back.
		q, ok2, err := ParseProto(protoName(p))
		if err != nil || !ok2 || q != p {
			t.Fatalf("ParseProto(%q) = %d, but its name %q parses to %d, %v", s, p, protoName(p), q, err)
		}
	})
}
