package nft

import (
	"net/netip"
	"testing"
	"time"
)

func TestExprString(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		e    Expr
		want string
	}{
		{Nfproto{IPv4}, "meta nfproto ipv4"},
		{Nfproto{IPv6}, "meta nfproto ipv6"},
		{L4Proto{47}, "meta l4proto gre"},
		{L4Proto{200}, "meta l4proto 200"},
		{MarkCmp{Mask: 0x3f00}, "meta mark & 0x00003f00 == 0x00000000"},
		{MarkCmp{Mask: 0x3f00, Value: 0x3f00, Neq: true}, "meta mark & 0x00003f00 != 0x00003f00"},
		{MarkCmp{Ct: true, Mask: 0x3f00}, "ct mark & 0x00003f00 == 0x00000000"},
		{IfName{Name: "eth1"}, `iifname "eth1"`},
		{IfName{Out: true, Name: "pppoe-wan"}, `oifname "pppoe-wan"`},
		{AddrMatch{Family: IPv4, Ranges: []AddrRange{{a("10.0.0.0"), a("10.255.255.255")}}}, "ip saddr 10.0.0.0/8"},
		{AddrMatch{Family: IPv6, Dst: true, Ranges: []AddrRange{{a("2001:db8::1"), a("2001:db8::1")}, {a("2001:db8::5"), a("2001:db8::9")}}},
			"ip6 daddr { 2001:db8::1, 2001:db8::5-2001:db8::9 }"},
		{AddrMasked{Family: IPv4, Dst: true, Mask: a("255.255.255.1"), Value: a("198.51.100.1")}, "ip daddr & 255.255.255.1 == 198.51.100.1"},
		{AddrMasked{Family: IPv4, Mask: a("0.0.0.1"), Value: a("0.0.0.0")}, "ip saddr & 0.0.0.1 == 0.0.0.0"},
		{AddrMasked{Family: IPv6, Dst: true, Mask: a("::ff:1"), Value: a("::1")}, "ip6 daddr & ::0.255.0.1 == ::1"},
		{AddrMasked{Family: IPv6, Mask: a("ffff:ffff::1"), Value: a("2001:db8::1")}, "ip6 saddr & ffff:ffff::1 == 2001:db8::1"},
		{AddrInSet{Family: IPv4, Dst: true, Set: "vpn"}, "ip daddr @vpn"},
		{AddrInSet{Family: IPv6, Set: "s"}, "ip6 saddr @s"},
		{PortMatch{Proto: 6, Dst: true, Ranges: []PortRange{{443, 443}}}, "tcp dport 443"},
		{PortMatch{Proto: 17, Ranges: []PortRange{{53, 53}, {67, 68}}}, "udp sport { 53, 67-68 }"},
		{ICMPv6Types{[]uint8{133, 137}}, "icmpv6 type { nd-router-solicit, nd-redirect }"},
		{ICMPv6Types{[]uint8{1}}, "icmpv6 type 1"},
		{NumgenVmap{Mod: 5, Entries: []NumgenEntry{{0, 2, Verdict{Goto, "a"}}, {3, 3, Verdict{Goto, "b"}}, {4, 4, Verdict{Jump, "c"}}}},
			"numgen random mod 5 vmap { 0-2 : goto a, 3 : goto b, 4 : jump c }"},
		{MarkVmap{Ct: true, Mask: 0x3f00, Map: "m"}, "ct mark & 0x00003f00 vmap @m"},
		{MarkVmap{Mask: 0xff, Map: "m"}, "meta mark & 0x000000ff vmap @m"},
		{CounterRef{"x"}, `counter name "x"`},
		{Log{Prefix: "MWAN3(r)", Level: LogNotice}, `log prefix "MWAN3(r)" level notice`},
		{Log{Prefix: "MWAN3(r)", Level: LogWarn}, `log prefix "MWAN3(r)"`},
		{SetMark{Mask: 0x3f00, Value: 0x100}, "meta mark set meta mark & 0xffffc1ff | 0x00000100"},
		{SetMark{Mask: 0x3f00, Value: 0x3f00}, "meta mark set meta mark | 0x00003f00"},
		{SetMark{Ct: true, Mask: 0x3f00}, "ct mark set ct mark & 0xffffc0ff"},
		{SetUpdate{Family: IPv6, Set: "s"}, "update @s { ip6 saddr }"},
		{Cgroup{Level: 2, ID: 4242}, "socket cgroupv2 level 2 4242"},
		{SaddrLocal{}, "fib saddr type local"},
		{SaddrLocal{Neq: true}, "fib saddr type != local"},
		{SaddrLocal{OnOif: true}, "fib saddr . oif type local"},
		{SaddrLocal{OnOif: true, Neq: true}, "fib saddr . oif type != local"},
		{Masquerade{}, "masquerade"},
		{Verdict{Kind: Return}, "return"},
		{Verdict{Kind: Accept}, "accept"},
		{Verdict{}, "invalid verdict"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestSetString(t *testing.T) {
	a := netip.MustParseAddr
	s := &Set{Name: "s", Key: KeyIPv4, Interval: true, AutoMerge: true, Addrs: []AddrRange{
		{a("10.0.0.0"), a("10.255.255.255")}, {a("192.168.1.1"), a("192.168.1.1")}, {a("224.0.0.0"), a("255.255.255.255")},
	}}
	want := "\tset s {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n" +
		"\t\telements = { 10.0.0.0/8, 192.168.1.1,\n\t\t\t     224.0.0.0/3 }\n\t}"
	if got := s.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	sticky := &Set{Name: "t", Key: KeyIPv6, Dynamic: true, Timeout: 90 * time.Minute, Size: 65535}
	want = "\tset t {\n\t\ttype ipv6_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout 1h30m\n\t}"
	if got := sticky.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	m := &Set{Name: "m", Key: KeyMark, Verdicts: true}
	for i := range 6 {
		m.Map = append(m.Map, MapElem{Key: uint32(i) << 8, Verdict: Verdict{Jump, "c"}})
	}
	want = "\tmap m {\n\t\ttype mark : verdict\n\t\telements = { 0x00000000 : jump c, 0x00000100 : jump c, 0x00000200 : jump c, 0x00000300 : jump c, 0x00000400 : jump c,\n\t\t\t     0x00000500 : jump c }\n\t}"
	if got := m.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestNftDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{600 * time.Second, "10m"}, {time.Second, "1s"}, {90 * time.Minute, "1h30m"},
		{1000000 * time.Second, "11d13h46m40s"}, {1500 * time.Millisecond, "1s500ms"}, {0, "0s"},
	} {
		if got := nftDuration(tt.d); got != tt.want {
			t.Errorf("nftDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestRuleStringImpliedFamily checks that a masked address match, like a
// prefix match, implies the family (nft leaves out meta nfproto).
func TestRuleStringImpliedFamily(t *testing.T) {
	a := netip.MustParseAddr
	r := Rule{Exprs: []Expr{Nfproto{IPv4}, AddrMasked{Family: IPv4, Mask: a("0.0.0.1"), Value: a("0.0.0.1")}, Verdict{Kind: Return}}}
	if got, want := r.String(), "ip saddr & 0.0.0.1 == 0.0.0.1 return"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r = Rule{Exprs: []Expr{Nfproto{IPv6}, SaddrLocal{}, Masquerade{}}}
	if got, want := r.String(), "meta nfproto ipv6 fib saddr type local masquerade"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPriorityString(t *testing.T) {
	for _, tt := range []struct {
		p    int32
		want string
	}{{-149, "mangle + 1"}, {-150, "mangle"}, {-155, "mangle - 5"}, {0, "filter"}, {-200, "-200"}, {100, "srcnat"}, {101, "srcnat + 1"}} {
		if got := priorityString(tt.p); got != tt.want {
			t.Errorf("priorityString(%d) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want LogLevel
		ok   bool
	}{
		{"emerg", LogEmerg, true}, {"alert", LogAlert, true}, {"crit", LogCrit, true}, {"error", LogErr, true},
		{"err", LogErr, true}, {"warning", LogWarn, true}, {"warn", LogWarn, true}, {"notice", LogNotice, true},
		{"info", LogInfo, true}, {"debug", LogDebug, true}, {"loud", 0, false}, {"", 0, false},
	} {
		got, err := ParseLogLevel(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseLogLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestTableStringEmpty(t *testing.T) {
	if got := (&Table{Name: "x"}).String(); got != "table inet x {\n}\n" {
		t.Errorf("empty table = %q", got)
	}
}
