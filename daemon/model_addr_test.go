package daemon

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
)

// TestAddressesConversion checks that address options are split into
// prefixes and masked addresses, in order, without losing any.
func TestAddressesConversion(t *testing.T) {
	parse := func(ss ...string) []config.Address {
		var out []config.Address
		for _, s := range ss {
			a, err := config.ParseAddress(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
		return out
	}
	a := netip.MustParseAddr
	tests := []struct {
		in     []string
		ps     []netip.Prefix
		masked []nft.MaskedAddr
	}{
		{nil, nil, nil},
		{[]string{"10.0.0.0/8", "192.168.1.7"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}, nil},
		{[]string{"192.168.1.0/255.255.255.0"}, []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}, nil},
		{[]string{"0.0.0.1/0.0.0.1", "10.0.0.0/8", "192.168.7.9/255.255.0.255"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			[]nft.MaskedAddr{{Addr: a("0.0.0.1"), Mask: a("0.0.0.1")}, {Addr: a("192.168.0.9"), Mask: a("255.255.0.255")}}},
		{[]string{"2001:db8::1/ffff:ffff::1"}, nil, []nft.MaskedAddr{{Addr: a("2001:db8::1"), Mask: a("ffff:ffff::1")}}},
	}
	for _, tt := range tests {
		ps, ms := addresses(parse(tt.in...))
		if !slices.Equal(ps, tt.ps) || !slices.Equal(ms, tt.masked) {
			t.Errorf("addresses(%v) = %v, %v; want %v, %v", tt.in, ps, ms, tt.ps, tt.masked)
		}
	}
}

// TestRealConfigOddEven renders real config 02 (the 2014 package default,
// sticky_even and sticky_odd with src_ip 0.0.0.0/0.0.0.1 and
// 0.0.0.1/0.0.0.1): both rules are rendered with a masked match and no
// warning is about them beyond legacy's IPv6 one for family any.
func TestRealConfigOddEven(t *testing.T) {
	data, err := os.ReadFile("../config/testdata/real/02-pkg-default-2014-v1-sticky-even-odd.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load("mwan3", data)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	st := map[string]*ifaceState{"wan": {up: true, online: true, device: "eth1"}}
	in, warns := nftInput(cfg, st, func(string) string { return "" }, connectedNets{}, false)
	if len(warns) > 0 {
		t.Fatalf("conversion warnings: %v", warns)
	}
	plan, err := nft.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range plan.Warnings {
		if !strings.HasPrefix(w, "invalid ipv6 address ") {
			t.Errorf("unexpected warning %q", w)
		}
	}
	listing := plan.String()
	for _, want := range []string{
		"ip saddr & 0.0.0.1 == 0.0.0.0 tcp dport 443 counter name \"rule_sticky_even_ipv4\" goto policy_wan_wan2_ipv4",
		"ip saddr & 0.0.0.1 == 0.0.0.1 tcp dport 443 counter name \"rule_sticky_odd_ipv4\" goto policy_wan2_wan_ipv4",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("plan lacks %q:\n%s", want, listing)
		}
	}
}
