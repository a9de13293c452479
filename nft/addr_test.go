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
