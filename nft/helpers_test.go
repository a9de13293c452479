package nft

import (
	"github.com/mwan3d/mwan3d/internal/golden"

	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

// shippedInput is the shipped default config (spec §2.6,
// reference/real-configs/07-pkg-default-2022-current.conf) as the daemon
// would convert it, with every interface enabled and wan/wan6 on eth1,
// wanb/wanb6 on eth2. online says which interfaces (by id) are online;
// enabled which are enabled.
func shippedInput(enabled, online [5]bool) *Input {
	dev := func(id int, d string) string {
		if enabled[id] {
			return d
		}
		return ""
	}
	return &Input{
		Mask: DefaultMask,
		Interfaces: []Interface{
			{Name: "wan", ID: 1, Family: IPv4, Enabled: enabled[1], Online: enabled[1] && online[1], Device: dev(1, "eth1")},
			{Name: "wan6", ID: 2, Family: IPv6, Enabled: enabled[2], Online: enabled[2] && online[2], Device: dev(2, "eth1")},
			{Name: "wanb", ID: 3, Family: IPv4, Enabled: enabled[3], Online: enabled[3] && online[3], Device: dev(3, "eth2")},
			{Name: "wanb6", ID: 4, Family: IPv6, Enabled: enabled[4], Online: enabled[4] && online[4], Device: dev(4, "eth2")},
		},
		Policies: []Policy{
			{Name: "wan_only", Members: []Member{m("wan_m1_w3"), m("wan6_m1_w3")}},
			{Name: "wanb_only", Members: []Member{m("wanb_m1_w2"), m("wanb6_m1_w2")}},
			{Name: "balanced", Members: []Member{m("wan_m1_w3"), m("wanb_m1_w3"), m("wan6_m1_w3"), m("wanb6_m1_w3")}},
			{Name: "wan_wanb", Members: []Member{m("wan_m1_w3"), m("wanb_m2_w2"), m("wan6_m1_w3"), m("wanb6_m2_w2")}},
			{Name: "wanb_wan", Members: []Member{m("wan_m2_w3"), m("wanb_m1_w2"), m("wan6_m2_w3"), m("wanb6_m1_w2")}},
		},
		Rules: []UserRule{
			{Name: "https", Sticky: true, DestPort: []PortRange{{443, 443}}, Proto: "tcp", UsePolicy: "balanced"},
			{Name: "default_rule_v4", DestIP: pfx("0.0.0.0/0"), UsePolicy: "balanced", Family: IPv4},
			{Name: "default_rule_v6", DestIP: pfx("::/0"), UsePolicy: "balanced", Family: IPv6},
		},
		Connected: pfx("127.0.0.0/8", "192.168.1.0/24", "192.168.1.1/32", "10.0.1.0/24", "224.0.0.0/3", "fd00:100::/64", "fe80::/64"),
	}
}

// m builds a member from a shipped-config member name <iface>_m<metric>_w<weight>.
func m(name string) Member {
	parts := strings.Split(name, "_")
	n := len(parts)
	metric, weight := 0, 0
	for _, c := range parts[n-2][1:] {
		metric = metric*10 + int(c-'0')
	}
	for _, c := range parts[n-1][1:] {
		weight = weight*10 + int(c-'0')
	}
	return Member{Name: name, Interface: strings.Join(parts[:n-2], "_"), Metric: metric, Weight: weight}
}

// checkGolden compares got with testdata/<name>.golden (rewritten with -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), got)
}

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string { return golden.Diff(want, got) }
