package config

import (
	"testing"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in, want string
		fam      Family
		prefix   bool
	}{
		{"10.0.0.1", "10.0.0.1", IPv4, true},
		{"10.1.2.3/8", "10.0.0.0/8", IPv4, true},
		{"0.0.0.0/0", "0.0.0.0/0", IPv4, true},
		{"192.168.1.0/255.255.255.0", "192.168.1.0/24", IPv4, true},
		{"0.0.0.1/0.0.0.1", "0.0.0.1/0.0.0.1", IPv4, false},
		{"10.0.0.7/0.0.0.1", "0.0.0.1/0.0.0.1", IPv4, false},
		{"2001:db8::1", "2001:db8::1", IPv6, true},
		{"2001:db8::1/32", "2001:db8::/32", IPv6, true},
		{"::/0", "::/0", IPv6, true},
		{"::ffff:10.0.0.1", "10.0.0.1", IPv4, true},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		_, isPrefix := a.Prefix()
		if a.String() != tt.want || a.Family() != tt.fam || isPrefix != tt.prefix {
			t.Errorf("%s = %s %s prefix=%v, want %s %s %v", tt.in, a, a.Family(), isPrefix, tt.want, tt.fam, tt.prefix)
		}
	}
	for _, bad := range []string{"", "10.0.0", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/-1", "10.0.0.0/ff", "host.example", "fe80::1%eth0", "10.0.0.0/2001:db8::", "10.0.0.0/"} {
		if a, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) = %s, want error", bad, a)
		}
	}
}

func TestParsePorts(t *testing.T) {
	tests := map[string][]PortRange{
		"22":             {{22, 22}},
		"80,443":         {{80, 80}, {443, 443}},
		"1024:2048":      {{1024, 2048}},
		"1024-2048":      {{1024, 2048}},
		":1024":          {{0, 1024}},
		"1024:":          {{1024, 65535}},
		"0,65535":        {{0, 0}, {65535, 65535}},
		"22, 80:90,443":  {{22, 22}, {80, 90}, {443, 443}},
		"5000:5000":      {{5000, 5000}},
		"1:2,3-4,5":      {{1, 2}, {3, 4}, {5, 5}},
		"65535:65535":    {{65535, 65535}},
		"00080":          {{80, 80}},
		"443,80":         {{443, 443}, {80, 80}},
		"1024:65535":     {{1024, 65535}},
		"10000-20000,53": {{10000, 20000}, {53, 53}},
	}
	for in, want := range tests {
		got, err := ParsePorts(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%q = %v, want %v", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q = %v, want %v", in, got, want)
			}
		}
	}
	for _, bad := range []string{"", ",", "80,", "65536", "-1", "2:1", "http", "1:2:3", "1--2", "1-", "-"} {
		if got, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q) = %v, want error", bad, got)
		}
	}
}

func TestParseProto(t *testing.T) {
	tests := []struct {
		in   string
		name string
		num  int
	}{{"all", "all", -1}, {"", "all", -1}, {"0", "all", -1}, {"tcp", "tcp", 6}, {"TCP", "tcp", 6},
		{"17", "udp", 17}, {"icmpv6", "icmpv6", 58}, {"ipv6-icmp", "ipv6-icmp", 58}, {"58", "icmpv6", 58},
		{"41", "ipv6", 41}, {"250", "250", 250}, {"gre", "gre", 47}}
	for _, tt := range tests {
		name, num, err := ParseProto(tt.in)
		if err != nil || name != tt.name || num != tt.num {
			t.Errorf("ParseProto(%q) = %q %d %v, want %q %d", tt.in, name, num, err, tt.name, tt.num)
		}
	}
	for _, bad := range []string{"256", "tcpp", "-1", "t c p"} {
		if _, _, err := ParseProto(bad); err == nil {
			t.Errorf("ParseProto(%q): want error", bad)
		}
	}
}

// TestMark checks the bit deposit of spec §3.2 and the special values of §3.3.
func TestMark(t *testing.T) {
	tests := []struct{ mask, v, want uint32 }{
		{0x3F00, 1, 0x100}, {0x3F00, 2, 0x200}, {0x3F00, 3, 0x300}, {0x3F00, 60, 0x3c00},
		{0x3F00, 63, 0x3f00}, {0x3F00, 62, 0x3e00}, {0x3F00, 61, 0x3d00}, {0x3F00, 0, 0},
		{0xAA, 5, 0x22}, {0xAA, 15, 0xAA}, {0xFF000000, 1, 0x01000000}, {0x80000001, 3, 0x80000001},
		{0x3F00, 64, 0}, // does not fit: cut to the mask's width
	}
	for _, tt := range tests {
		if got := Mark(tt.mask, tt.v); got != tt.want {
			t.Errorf("Mark(%#x, %d) = %#x, want %#x", tt.mask, tt.v, got, tt.want)
		}
	}
	for mask, want := range map[uint32]int{0x3F00: 60, 0xFF: 252, 0x7: 4, 0x3: 0, 0: 0, 0xF0: 12} {
		if got := (Globals{MMXMask: mask}).IfaceMax(); got != want {
			t.Errorf("IfaceMax(%#x) = %d, want %d", mask, got, want)
		}
	}
}

func TestRuleVariants(t *testing.T) {
	cfg, diags := Load("t", []byte(`
config rule 'any_v4'
	option src_ip '10.0.0.0/8'
	option use_policy 'default'
config rule 'mixed'
	option dest_ip '10.0.0.0/8,2001:db8::/32'
	option use_policy 'default'
config rule 'v6only'
	option family 'ipv6'
	option use_policy 'default'
config rule 'both'
	option use_policy 'default'
`))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	want := map[string]string{"any_v4": "ipv4", "mixed": "ipv4 ipv6", "v6only": "ipv6", "both": "ipv4 ipv6"}
	for _, r := range cfg.Rules {
		var got []string
		for _, f := range r.Variants() {
			got = append(got, string(f))
		}
		if s := joinWords(got); s != want[r.Name] {
			t.Errorf("%s variants %q, want %q", r.Name, s, want[r.Name])
		}
	}
	m := cfg.Rules[1]
	if len(AddressesOf(m.DestIP, IPv4)) != 1 || len(AddressesOf(m.DestIP, IPv6)) != 1 {
		t.Errorf("mixed split: %v", m.DestIP)
	}
}

func joinWords(s []string) string {
	out := ""
	for i, w := range s {
		if i > 0 {
			out += " "
		}
		out += w
	}
	return out
}
