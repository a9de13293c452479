package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
)

func TestSetHas(t *testing.T) {
	k := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	// 10.0.0.0/8, 192.0.2.5 and 198.51.100.10-20 as the kernel lists an
	// interval set (ends are the first address past a range), in the
	// kernel's descending order, plus the leading end at 0.0.0.0.
	ranges := []setElem{
		{key: k("198.51.100.21"), end: true}, {key: k("198.51.100.10")},
		{key: k("192.0.2.6"), end: true}, {key: k("192.0.2.5")},
		{key: k("11.0.0.0"), end: true}, {key: k("10.0.0.0")},
		{key: k("0.0.0.0"), end: true},
	}
	adjacent := []setElem{{key: k("10.0.0.0")}, {key: k("10.0.0.8"), end: true}, {key: k("10.0.0.8")}, {key: k("10.0.0.16"), end: true}}
	toTheTop := []setElem{{key: k("255.255.255.0")}}
	exact := []setElem{{key: k("192.0.2.1")}, {key: k("2001:db8::1")}}
	oneElem := []setElem{{key: k("203.0.113.0"), keyEnd: k("203.0.113.127")}}
	tests := []struct {
		elems    []setElem
		interval bool
		addr     string
		want     bool
	}{
		{ranges, true, "10.1.2.3", true},
		{ranges, true, "10.0.0.0", true},
		{ranges, true, "10.255.255.255", true},
		{ranges, true, "11.0.0.0", false},
		{ranges, true, "9.255.255.255", false},
		{ranges, true, "0.0.0.0", false},
		{ranges, true, "192.0.2.5", true},
		{ranges, true, "192.0.2.6", false},
		{ranges, true, "198.51.100.20", true},
		{ranges, true, "198.51.100.21", false},
		{adjacent, true, "10.0.0.8", true},
		{adjacent, true, "10.0.0.15", true},
		{adjacent, true, "10.0.0.16", false},
		{toTheTop, true, "255.255.255.255", true},
		{nil, true, "10.0.0.1", false},
		{exact, false, "192.0.2.1", true},
		{exact, false, "192.0.2.2", false},
		{exact, false, "2001:db8::1", true},
		{oneElem, true, "203.0.113.127", true},
		{oneElem, true, "203.0.113.128", false},
	}
	for _, tt := range tests {
		if got := setHas(tt.elems, tt.interval, k(tt.addr)); got != tt.want {
			t.Errorf("setHas(%v, %s) = %v, want %v", tt.interval, tt.addr, got, tt.want)
		}
	}
}

// ipsetConfig has a rule that matches on a set.
const ipsetConfig = `
config interface 'wan'
	option enabled '1'

config member 'wan_m'
	option interface 'wan'

config policy 'wan_only'
	list use_member 'wan_m'

config rule 'vpn'
	option ipset 'vpn_hosts'
	option use_policy 'unreachable'

config rule 'default_rule_v4'
	option dest_ip '0.0.0.0/0'
	option family 'ipv4'
	option use_policy 'wan_only'
`

// TestExplainIpset: a rule on a set matches as the set's contents say;
// without a way to read sets, or when the set cannot be read, the rule
// does not match and a note says why.
func TestExplainIpset(t *testing.T) {
	cfg, diags := config.Load("mwan3", []byte(ipsetConfig))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	in, warns := nftInput(cfg, map[string]*ifaceState{"wan": {up: true, online: true, device: "eth1"}}, func(string) string { return "" }, connectedNets{}, false)
	if len(warns) > 0 {
		t.Fatal(warns)
	}
	plan, err := nft.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	hosts := func(set string, a netip.Addr) (bool, error) {
		asked = append(asked, set+" "+a.String())
		return a == netip.MustParseAddr("192.0.2.7"), nil
	}
	broken := func(string, netip.Addr) (bool, error) { return false, errors.New("no such set") }
	tests := []struct {
		sets SetLookup
		dst  string
		want string
		note string
	}{
		{hosts, "192.0.2.7", "rule vpn unreachable unreachable []", ""},
		{hosts, "192.0.2.8", "rule default_rule_v4 wan_only balance [wan:100]", ""},
		{nil, "192.0.2.7", "rule default_rule_v4 wan_only balance [wan:100]", "rule vpn: matches only if the destination is in set vpn_hosts (not checked)"},
		{broken, "192.0.2.7", "rule default_rule_v4 wan_only balance [wan:100]", "(not checked: no such set)"},
	}
	for _, tt := range tests {
		ex := Explain(in, plan, Flow{Family: nft.IPv4, Dst: netip.MustParseAddr(tt.dst), Proto: -1}, tt.sets)
		if got := explainString(ex); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.dst, got, tt.want)
		}
		if note := strings.Join(ex.Notes, "; "); (tt.note == "") != (note == "") || !strings.Contains(note, tt.note) {
			t.Errorf("%s: notes %q, want %q", tt.dst, note, tt.note)
		}
	}
	if !slices.Equal(asked, []string{"vpn_hosts 192.0.2.7", "vpn_hosts 192.0.2.8"}) {
		t.Errorf("lookups %q", asked)
	}
}
