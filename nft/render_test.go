package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkPlan verifies the plan's internal consistency: unique names, every
// jump/goto target, set, map and counter it references exists, managed
// elements are sorted and disjoint.
func checkPlan(t testing.TB, p *Plan) {
	t.Helper()
	chains := map[string]bool{}
	for _, c := range p.Table.Chains {
		if chains[c.Name] {
			t.Fatalf("chain %s defined twice", c.Name)
		}
		chains[c.Name] = true
	}
	sets := map[string]*Set{}
	for _, s := range p.Table.Sets {
		if sets[s.Name] != nil {
			t.Fatalf("set %s defined twice", s.Name)
		}
		sets[s.Name] = s
		for i := 1; i < len(s.Addrs); i++ {
			if !s.Addrs[i-1].To.Less(s.Addrs[i].From) {
				t.Fatalf("set %s: elements %v and %v not sorted/disjoint", s.Name, s.Addrs[i-1], s.Addrs[i])
			}
		}
		for _, m := range s.Map {
			if !chains[m.Verdict.Chain] {
				t.Fatalf("map %s: jump to missing chain %s", s.Name, m.Verdict.Chain)
			}
		}
	}
	counters := map[string]bool{}
	for _, c := range p.Table.Counters {
		if counters[c.Name] {
			t.Fatalf("counter %s defined twice", c.Name)
		}
		counters[c.Name] = true
	}
	if len(p.Counters) != len(p.Table.Counters) {
		t.Fatalf("%d counter infos for %d counters", len(p.Counters), len(p.Table.Counters))
	}
	verdict := func(where string, v Verdict) {
		if (v.Kind == Jump || v.Kind == Goto) && !chains[v.Chain] {
			t.Fatalf("%s: %s to missing chain", where, v)
		}
	}
	for _, c := range p.Table.Chains {
		for i, r := range c.Rules {
			where := fmt.Sprintf("chain %s rule %d (%s)", c.Name, i+1, r)
			for j, e := range r.Exprs {
				switch e := e.(type) {
				case Verdict:
					verdict(where, e)
					if j != len(r.Exprs)-1 {
						t.Fatalf("%s: verdict not last", where)
					}
				case NumgenVmap:
					next := uint32(0)
					for _, en := range e.Entries {
						verdict(where, en.Verdict)
						if en.First != next || en.Last < en.First {
							t.Fatalf("%s: numgen ranges not contiguous", where)
						}
						next = en.Last + 1
					}
					if next != e.Mod {
						t.Fatalf("%s: numgen ranges end at %d, mod %d", where, next, e.Mod)
					}
				case AddrMasked:
					if familyOf(e.Mask) != e.Family || familyOf(e.Value) != e.Family || (MaskedAddr{e.Value, e.Mask}).value() != e.Value {
						t.Fatalf("%s: mask %s and value %s of the wrong family or value outside the mask", where, e.Mask, e.Value)
					}
					if _, ok := (MaskedAddr{e.Value, e.Mask}).prefix(); ok {
						t.Fatalf("%s: masked match with a prefix mask", where)
					}
				case AddrInSet:
					if s := sets[e.Set]; s == nil || s.Key != addrKey(e.Family) {
						t.Fatalf("%s: set %s missing or of the wrong family", where, e.Set)
					}
				case SetUpdate:
					if s := sets[e.Set]; s == nil || !s.Dynamic || s.Key != addrKey(e.Family) {
						t.Fatalf("%s: dynamic set %s missing or wrong", where, e.Set)
					}
				case MarkVmap:
					if s := sets[e.Map]; s == nil || !s.Verdicts {
						t.Fatalf("%s: map %s missing", where, e.Map)
					}
				case CounterRef:
					if !counters[e.Name] {
						t.Fatalf("%s: counter %s missing", where, e.Name)
					}
				}
			}
		}
	}
}

func renderOK(t testing.TB, in *Input) *Plan {
	t.Helper()
	p, err := Render(in)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	checkPlan(t, p)
	return p
}

// TestRenderShipped renders the shipped default config: only wan enabled
// (online and offline).
func TestRenderShipped(t *testing.T) {
	for _, online := range []bool{true, false} {
		name := "shipped_wan_online"
		if !online {
			name = "shipped_wan_offline"
		}
		t.Run(name, func(t *testing.T) {
			p := renderOK(t, shippedInput([5]bool{1: true}, [5]bool{1: online}))
			checkGolden(t, name, p.Dump())
		})
	}
}

// TestRenderDefaultStates renders the default config with all four
// interfaces enabled, in every combination of online and offline (the
// golden name lists wan, wan6, wanb, wanb6; 1 = online).
func TestRenderDefaultStates(t *testing.T) {
	for bitsOn := range 16 {
		var online [5]bool
		name := "default_online_"
		for i := 1; i <= 4; i++ {
			online[i] = bitsOn&(1<<(4-i)) != 0
			if online[i] {
				name += "1"
			} else {
				name += "0"
			}
		}
		t.Run(name, func(t *testing.T) {
			p := renderOK(t, shippedInput([5]bool{false, true, true, true, true}, online))
			checkGolden(t, name, p.Dump())
		})
	}
}

// optionsInput exercises every rule option.
func optionsInput() *Input {
	return &Input{
		Mask: DefaultMask, Logging: true, LogLevel: "warning",
		Interfaces: []Interface{
			{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Online: true, Device: "eth1"},
			{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Online: true, Device: "eth1"},
			{Name: "wanb", ID: 3, Family: IPv4, Enabled: true, Online: true, Device: "eth2"},
		},
		Policies: []Policy{
			{Name: "balanced", Members: []Member{
				{Name: "wan_m1_w3", Interface: "wan", Metric: 1, Weight: 3},
				{Name: "wanb_m1_w2", Interface: "wanb", Metric: 1, Weight: 2},
				{Name: "wan6_m1_w1", Interface: "wan6", Metric: 1, Weight: 1},
			}},
			{Name: "v4only", LastResort: "blackhole", Members: []Member{{Name: "wanb_m1", Interface: "wanb", Metric: 1, Weight: 1}}},
		},
		Ipsets: []Ipset{{Name: "cdn6", Family: IPv6}},
		Rules: []UserRule{
			{Name: "https", Sticky: true, Timeout: 300 * time.Second, Proto: "tcp", DestPort: []PortRange{{443, 443}}, UsePolicy: "balanced", Logging: true},
			{Name: "sticky_default", Sticky: true, Proto: "udp", DestPort: []PortRange{{443, 443}}, UsePolicy: "balanced"},
			{Name: "lists", Proto: "udp", SrcIP: pfx("10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32"),
				DestIP: pfx("1.2.3.0/24", "5.6.7.8/32"), SrcPort: []PortRange{{1, 1023}},
				DestPort: []PortRange{{53, 53}, {67, 68}, {5000, 6000}}, UsePolicy: "default"},
			{Name: "sports", Proto: "tcp", SrcPort: []PortRange{{22, 22}}, UsePolicy: "default"},
			{Name: "range", DestIP: pfx("10.0.0.0/9", "10.128.0.0/10"), Proto: "gre", UsePolicy: "blackhole"},
			{Name: "lanonly", SrcIface: "lan", SrcDevice: "br-lan", Proto: "icmp", UsePolicy: "unreachable", Logging: true},
			{Name: "landown", SrcIface: "guest", UsePolicy: "balanced"},
			{Name: "dnsmasq", Ipset: "vpn", UsePolicy: "v4only"},
			{Name: "dnsmasq6", Ipset: "cdn6", Proto: "6", UsePolicy: "balanced"},
			{Name: "bypassset", Ipset: "mwan3_dynamic_ipv6", UsePolicy: "default"},
			{Name: "badipset", Ipset: "mark_save", UsePolicy: "default"},
			{Name: "ip6only", Family: IPv6, DestIP: pfx("2001:db8::1/128", "2001:db8::2/127"), UsePolicy: "balanced"},
			{Name: "v4fam", Family: IPv4, Proto: "41", UsePolicy: "v4only"},
			{Name: "any6pol", Proto: "esp", UsePolicy: "v4only"},
			{Name: "portsicmp", Proto: "icmp", DestPort: []PortRange{{80, 80}}, UsePolicy: "default"},
			{Name: "badproto", Proto: "nosuch", UsePolicy: "default"},
			{Name: "nopolicy", UsePolicy: "missing"},
			{Name: "wrongfam", Family: IPv6, SrcIP: pfx("10.1.0.0/16"), UsePolicy: "default"},
			{Name: "empty"},
			{Name: "https", UsePolicy: "default"},
			{Name: "all_wild", DestIP: pfx("0.0.0.0/0", "::/0"), UsePolicy: "balanced"},
		},
		Connected: pfx("10.0.1.0/24", "192.168.1.0/24", "192.168.1.1/32", "224.0.0.0/3", "fd00:100::/64", "fe80::/64"),
		Custom:    pfx("172.16.0.0/12", "2001:db8:ffff::/48"),
		Uses: []Use{{Cgroup: 4242, Level: 2, Interface: "wanb"}, {Cgroup: 1, Interface: "nosuch"},
			{Cgroup: 4243, Level: 2, Interface: "wanb"}, {Cgroup: 4242, Level: 2, Interface: "wan6"}},
	}
}

func TestRenderRuleOptions(t *testing.T) {
	p := renderOK(t, optionsInput())
	checkGolden(t, "rule_options", p.Dump())
}

func masked(addr, mask string) MaskedAddr {
	return MaskedAddr{Addr: netip.MustParseAddr(addr), Mask: netip.MustParseAddr(mask)}
}

// maskedInput exercises addresses under non-contiguous masks: alone, with
// prefixes, in both directions (one nft rule per combination), IPv6,
// contiguous masks (plain prefixes) and the wrong family.
func maskedInput() *Input {
	return &Input{
		Mask: DefaultMask, Logging: true,
		Interfaces: []Interface{
			{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Online: true, Device: "eth1"},
			{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Online: true, Device: "eth1"},
			{Name: "wanb", ID: 3, Family: IPv4, Enabled: true, Online: true, Device: "eth2"},
		},
		Policies: []Policy{
			{Name: "wan_wanb", Members: []Member{
				{Name: "wan_m1", Interface: "wan", Metric: 1, Weight: 1}, {Name: "wanb_m2", Interface: "wanb", Metric: 2, Weight: 1},
				{Name: "wan6_m1", Interface: "wan6", Metric: 1, Weight: 1},
			}},
			{Name: "wanb_wan", Members: []Member{
				{Name: "wan_m2", Interface: "wan", Metric: 2, Weight: 1}, {Name: "wanb_m1", Interface: "wanb", Metric: 1, Weight: 1},
			}},
		},
		Rules: []UserRule{
			// Real config 02: even and odd sources.
			{Name: "sticky_even", Family: IPv4, SrcMasked: []MaskedAddr{masked("0.0.0.0", "0.0.0.1")}, Proto: "tcp", DestPort: []PortRange{{443, 443}}, UsePolicy: "wan_wanb"},
			{Name: "sticky_odd", Family: IPv4, SrcMasked: []MaskedAddr{masked("0.0.0.1", "0.0.0.1")}, Proto: "tcp", DestPort: []PortRange{{443, 443}}, UsePolicy: "wanb_wan", Sticky: true, Logging: true},
			// Two source alternatives times two destination ones.
			{Name: "cross", Family: IPv4, SrcIP: pfx("10.0.0.0/8", "172.16.0.0/12"), SrcMasked: []MaskedAddr{masked("192.168.0.7", "255.255.0.255")},
				DestMasked: []MaskedAddr{masked("198.51.100.1", "255.255.255.1"), masked("203.0.113.0", "255.255.255.3")}, UsePolicy: "default"},
			{Name: "v6", Family: IPv6, DestMasked: []MaskedAddr{masked("2001:db8::1", "ffff:ffff::1"), masked("::1", "::ff:1")}, UsePolicy: "wan_wanb"},
			// A contiguous mask is a prefix; duplicates collapse.
			{Name: "contiguous", DestMasked: []MaskedAddr{masked("192.0.2.0", "255.255.255.0"), masked("0.0.0.1", "0.0.0.1"), masked("0.0.0.1", "0.0.0.1")},
				DestIP: pfx("192.0.3.0/24"), Family: IPv4, UsePolicy: "blackhole"},
			// The family is decided by the addresses.
			{Name: "mixed", SrcMasked: []MaskedAddr{masked("0.0.0.1", "0.0.0.1")}, SrcIP: pfx("fd00::/8"), UsePolicy: "unreachable"},
			// 0.0.0.0/0 makes the masked alternative redundant.
			{Name: "wild", SrcIP: pfx("0.0.0.0/0"), SrcMasked: []MaskedAddr{masked("0.0.0.1", "0.0.0.1")}, Family: IPv4, UsePolicy: "wanb_wan"},
			// Warnings.
			{Name: "anyfam", SrcMasked: []MaskedAddr{masked("0.0.0.1", "0.0.0.1")}, UsePolicy: "default"},
			{Name: "wrongfam", Family: IPv6, DestMasked: []MaskedAddr{masked("0.0.0.1", "0.0.0.1")}, UsePolicy: "default"},
			{Name: "badmask", SrcMasked: []MaskedAddr{masked("10.0.0.1", "ffff::1")}, UsePolicy: "default"},
			{Name: "toomany", Family: IPv4, SrcMasked: manyMasked(9), DestMasked: manyMasked(8), UsePolicy: "default"},
		},
		Connected: pfx("192.168.1.0/24", "fd00:100::/64"),
	}
}

// manyMasked returns n distinct odd-address matches in 10.0.0.0/8.
func manyMasked(n int) []MaskedAddr {
	out := make([]MaskedAddr, n)
	for i := range n {
		out[i] = masked(fmt.Sprintf("10.%d.0.1", i), "255.255.0.1")
	}
	return out
}

func TestRenderMaskedAddrs(t *testing.T) {
	p := renderOK(t, maskedInput())
	checkGolden(t, "masked_addrs", p.Dump())
	var rules []string
	for _, c := range p.Table.Chains {
		if c.Name == chainRules {
			for _, r := range c.Rules {
				rules = append(rules, r.String())
			}
		}
	}
	count := func(sub string) int {
		n := 0
		for _, r := range rules {
			if strings.Contains(r, sub) {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		counter string
		want    int
	}{
		{"rule_sticky_even_ipv4", 1}, {"rule_sticky_odd_ipv4", 1}, {"rule_cross_ipv4", 4}, {"rule_v6_ipv6", 2},
		{"rule_contiguous_ipv4", 2}, {"rule_mixed_ipv4", 1}, {"rule_mixed_ipv6", 1}, {"rule_wild_ipv4", 1},
		{"rule_anyfam_ipv4", 1}, {"rule_anyfam_ipv6", 0}, {"rule_wrongfam_", 0}, {"rule_badmask_", 0}, {"rule_toomany_", 0},
	} {
		if got := count(`counter name "` + tt.counter); got != tt.want {
			t.Errorf("%d nft rules count into %s, want %d", got, tt.counter, tt.want)
		}
	}
	for _, want := range []string{
		"invalid ipv6 address 0.0.0.1/0.0.0.1 specified for rule anyfam",
		"rule wrongfam: dest_ip has no ipv6 address",
		"rule badmask: src_ip 10.0.0.1/ffff::1 is not an address and a mask of one family",
		"rule toomany: 72 combinations of src_ip and dest_ip alternatives exceed 64",
	} {
		if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("no warning containing %q in %q", want, p.Warnings)
		}
	}
	if len(p.Warnings) != 4 {
		t.Errorf("warnings: %q", p.Warnings)
	}
}

// manyRulesInput builds a config of n interfaces (alternating IPv4 and
// IPv6, all online) and r rules using every kind of match.
func manyRulesInput(n, r int) *Input {
	in := &Input{Mask: DefaultMask}
	for i := 1; i <= n; i++ {
		fam := IPv4
		if i%2 == 0 {
			fam = IPv6
		}
		in.Interfaces = append(in.Interfaces, Interface{
			Name: fmt.Sprintf("wan%d", i), ID: i, Family: fam, Enabled: true, Online: i%7 != 0, Device: fmt.Sprintf("eth%d", i),
		})
		in.Policies = append(in.Policies, Policy{Name: fmt.Sprintf("only%d", i), Members: []Member{
			{Name: fmt.Sprintf("m%d", i), Interface: fmt.Sprintf("wan%d", i), Metric: 1, Weight: 1},
		}})
	}
	var all []Member
	for i := 1; i <= n; i++ {
		all = append(all, Member{Name: fmt.Sprintf("b%d", i), Interface: fmt.Sprintf("wan%d", i), Metric: 1 + i%3, Weight: 1 + i%5})
	}
	in.Policies = append(in.Policies, Policy{Name: "balanced", Members: all})
	for k := range r {
		rule := UserRule{Name: fmt.Sprintf("r%d", k)}
		switch k % 8 {
		case 0:
			rule.Proto, rule.DestPort = "tcp", []PortRange{{uint16(1000 + k), uint16(1000 + k)}}
		case 1:
			rule.Family, rule.DestIP = IPv4, pfx(fmt.Sprintf("10.%d.%d.0/24", k/256%256, k%256))
		case 2:
			rule.Family, rule.SrcIP = IPv6, pfx(fmt.Sprintf("fd00:%x::/64", k))
		case 3:
			rule.Proto, rule.SrcPort, rule.DestPort = "udp", []PortRange{{uint16(k), uint16(k + 10)}}, []PortRange{{53, 53}, {853, 853}}
		case 4:
			rule.Ipset = fmt.Sprintf("set%d", k%10)
		case 5:
			rule.Proto, rule.DestPort = "tcp", []PortRange{{443, 443}, {uint16(k), uint16(k)}}
			rule.Sticky = k%40 == 5 // sticky sets cost kernel memory per WAN
		case 6:
			rule.Family, rule.Proto = IPv4, "icmp"
		case 7:
			rule.Family, rule.SrcIface, rule.SrcDevice = IPv4, "lan", "br-lan"
		}
		switch k % 5 {
		case 0:
			rule.UsePolicy = "balanced"
		case 1:
			rule.UsePolicy = "default"
		case 2:
			rule.UsePolicy = fmt.Sprintf("only%d", 1+k%n)
		case 3:
			rule.UsePolicy = "unreachable"
		default:
			rule.UsePolicy = fmt.Sprintf("only%d", 1+(k+1)%n)
		}
		in.Rules = append(in.Rules, rule)
	}
	in.Connected = pfx("192.168.1.0/24", "fd00:100::/64")
	return in
}

func TestRenderManyRules(t *testing.T) {
	p := renderOK(t, manyRulesInput(4, 1000))
	if len(p.Warnings) != 0 {
		t.Errorf("warnings: %v", p.Warnings)
	}
	checkGolden(t, "rules_1000", p.Dump())
	for _, size := range [][2]int{{16, 200}, {60, 1000}} {
		renderOK(t, manyRulesInput(size[0], size[1]))
	}
}

func TestRenderIPv6Only(t *testing.T) {
	in := &Input{
		Mask: DefaultMask,
		Interfaces: []Interface{
			{Name: "wan6", ID: 1, Family: IPv6, Enabled: true, Online: true, Device: "pppoe-wan"},
			{Name: "wanb6", ID: 2, Family: IPv6, Enabled: true, Online: true, Device: "wwan0"},
		},
		Policies: []Policy{{Name: "balanced", Members: []Member{
			{Name: "a", Interface: "wan6", Metric: 1, Weight: 1}, {Name: "b", Interface: "wanb6", Metric: 1, Weight: 1},
		}}},
		Rules: []UserRule{
			{Name: "https", Sticky: true, Proto: "tcp", DestPort: []PortRange{{443, 443}}, UsePolicy: "balanced"},
			{Name: "default_rule", UsePolicy: "balanced"},
		},
		Connected: pfx("2001:db8:100::/56", "fe80::/64"),
	}
	checkGolden(t, "ipv6_only", renderOK(t, in).Dump())
}

// dualStackInput is a PPPoE wan with IPv4 and IPv6 on one device and an
// LTE backup, both families.
func dualStackInput() *Input {
	return &Input{
		Mask: 0xff00,
		Interfaces: []Interface{
			{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Online: true, Device: "pppoe-wan"},
			{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Online: true, Device: "pppoe-wan"},
			{Name: "lte", ID: 3, Family: IPv4, Enabled: true, Online: true, Device: "wwan0"},
			{Name: "lte6", ID: 4, Family: IPv6, Enabled: true, Online: false, Device: "wwan0"},
		},
		Policies: []Policy{
			{Name: "failover", Members: []Member{
				{Name: "wan_m1", Interface: "wan", Metric: 1, Weight: 1}, {Name: "lte_m2", Interface: "lte", Metric: 2, Weight: 1},
				{Name: "wan6_m1", Interface: "wan6", Metric: 1, Weight: 1}, {Name: "lte6_m2", Interface: "lte6", Metric: 2, Weight: 1},
			}},
			{Name: "lte_first", LastResort: "default", Members: []Member{
				{Name: "lte_m1", Interface: "lte", Metric: 1, Weight: 1}, {Name: "lte6_m1", Interface: "lte6", Metric: 1, Weight: 1},
			}},
		},
		Rules: []UserRule{
			{Name: "voip", Proto: "udp", DestPort: []PortRange{{5060, 5061}}, UsePolicy: "lte_first"},
			{Name: "default_rule", UsePolicy: "failover"},
		},
		Connected: pfx("192.168.1.0/24", "100.64.0.1/32", "2001:db8:100::/56"),
	}
}

func TestRenderDualStack(t *testing.T) {
	checkGolden(t, "dual_stack", renderOK(t, dualStackInput()).Dump())
	in := dualStackInput()
	in.NoIPv6 = true
	checkGolden(t, "dual_stack_noipv6", renderOK(t, in).Dump())
}

// TestRenderLastResort renders a policy without online member for each
// last_resort value; wanb has a device, so it gets an "out" rule.
func TestRenderLastResort(t *testing.T) {
	for _, lr := range []string{"unreachable", "blackhole", "default"} {
		t.Run(lr, func(t *testing.T) {
			in := &Input{
				Mask: DefaultMask,
				Interfaces: []Interface{
					{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Online: false},
					{Name: "wanb", ID: 2, Family: IPv4, Enabled: true, Online: false, Device: "eth2"},
					{Name: "wanc", ID: 3, Family: IPv4, Enabled: true, Online: false, Device: "eth3"},
				},
				Policies: []Policy{{Name: "p", LastResort: lr, Members: []Member{
					{Name: "a", Interface: "wan", Metric: 1, Weight: 1}, {Name: "b", Interface: "wanb", Metric: 1, Weight: 1},
					{Name: "c", Interface: "wanc", Metric: 2, Weight: 1},
				}}},
				Rules: []UserRule{{Name: "all", UsePolicy: "p"}},
			}
			checkGolden(t, "last_resort_"+lr, renderOK(t, in).Dump())
		})
	}
}

func TestRenderDeterministic(t *testing.T) {
	in := optionsInput()
	a, b := renderOK(t, in).Dump(), renderOK(t, in).Dump()
	if a != b {
		t.Fatal("two renders of the same input differ")
	}
	if !slices.Equal(in.Rules[2].SrcIP, pfx("10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32")) {
		t.Fatal("Render modified its input")
	}
}

func TestRenderErrors(t *testing.T) {
	base := func() *Input { return shippedInput([5]bool{false, true, true, true, true}, [5]bool{}) }
	tests := []struct {
		name   string
		modify func(*Input)
		want   string
	}{
		{"mask", func(in *Input) { in.Mask = 0x3 }, "need at least 3"},
		{"duplicate interface", func(in *Input) { in.Interfaces[1].Name = "wan" }, "defined twice"},
		{"duplicate id", func(in *Input) { in.Interfaces[1].ID = 1 }, "id 1 already used"},
		{"id too large", func(in *Input) { in.Interfaces[3].ID = 61 }, "outside 1..60"},
		{"family", func(in *Input) { in.Interfaces[0].Family = FamilyAny }, "family must be"},
		{"interface name", func(in *Input) { in.Interfaces[0].Name = "wan-1" }, "invalid name"},
		{"policy name", func(in *Input) { in.Policies[0].Name = "a b" }, "invalid name"},
		{"duplicate policy", func(in *Input) { in.Policies[1].Name = "wan_only" }, "defined twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			tt.modify(in)
			_, err := Render(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRenderWarnings(t *testing.T) {
	p := renderOK(t, optionsInput())
	for _, want := range []string{
		"invalid ipv6 address 1.2.3.0/24 specified for rule lists",
		"rule landown: could not find device corresponding to src_iface guest",
		"rule badipset: ipset name \"mark_save\" cannot be used",
		"rule portsicmp: src_port/dest_port set but proto \"icmp\" is not tcp or udp",
		"rule badproto: unknown protocol \"nosuch\"",
		"rule nopolicy: policy missing does not exist",
		"rule wrongfam: src_ip has no ipv6 address",
		"rule \"https\": invalid or duplicate name",
		"use: interface nosuch is not an enabled mwan3 interface",
	} {
		if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("no warning containing %q in %q", want, p.Warnings)
		}
	}
}

func TestPolicyStates(t *testing.T) {
	ifaces := []Interface{
		{Name: "a", ID: 1, Family: IPv4, Enabled: true, Online: true, Device: "eth1"},
		{Name: "b", ID: 2, Family: IPv4, Enabled: true, Online: true, Device: "eth2"},
		{Name: "c", ID: 3, Family: IPv4, Enabled: true, Online: false, Device: "eth3"},
		{Name: "d", ID: 4, Family: IPv4, Enabled: false, Online: true, Device: "eth4"},
		{Name: "e", ID: 5, Family: IPv4, Enabled: true, Online: false},
		{Name: "f", ID: 6, Family: IPv6, Enabled: true, Online: true, Device: "eth1"},
	}
	mem := func(iface string, metric, weight int) Member {
		return Member{Name: fmt.Sprintf("%s_m%d_w%d", iface, metric, weight), Interface: iface, Metric: metric, Weight: weight}
	}
	tests := []struct {
		name       string
		members    []Member
		active     string // "iface:weight" list
		total      int
		lastResort string
		rules      []string // the policy chain's rules
	}{
		{"weights", []Member{mem("a", 1, 3), mem("b", 1, 2)}, "a:3 b:2", 5, "", []string{
			"numgen random mod 5 vmap { 0-2 : goto policy_p_ipv4_m1, 3-4 : goto policy_p_ipv4_m2 }"}},
		{"tier 1 wins", []Member{mem("b", 2, 1), mem("a", 1, 1)}, "a:1", 1, "", []string{"goto policy_p_ipv4_m1"}},
		{"tier 2 takes over", []Member{mem("c", 1, 1), mem("b", 2, 1)}, "b:1", 1, "", []string{"goto policy_p_ipv4_m2"}},
		{"disabled never online", []Member{mem("d", 1, 1), mem("a", 3, 1)}, "a:1", 1, "", nil},
		{"metric above 256 ignored", []Member{mem("a", 257, 1), mem("b", 256, 1)}, "b:1", 1, "", nil},
		{"same interface twice", []Member{mem("a", 1, 1), mem("a", 1, 2), mem("b", 1, 1)}, "a:3 b:1", 4, "", []string{
			"numgen random mod 4 vmap { 0-2 : goto policy_p_ipv4_m1, 3 : goto policy_p_ipv4_m2 }"}},
		{"other family ignored", []Member{mem("f", 1, 1)}, "", 0, "unreachable", []string{
			`counter name "policy_p_ipv4" meta mark set meta mark & 0xfffffeff | 0x00003e00 comment "unreachable"`}},
		{"out rules newest first", []Member{mem("c", 1, 1), mem("e", 1, 1), mem("d", 1, 1)}, "", 0, "unreachable", []string{
			`oifname "eth3" meta mark set meta mark | 0x00003f00 comment "out c eth3"`,
			`counter name "policy_p_ipv4" meta mark set meta mark & 0xfffffeff | 0x00003e00 comment "unreachable"`}},
		{"no out rules with an online member", []Member{mem("c", 1, 1), mem("a", 2, 1)}, "a:1", 1, "", nil},
		{"weight zero ignored", []Member{mem("a", 1, 0), mem("b", 1, 1)}, "b:1", 1, "", nil},
		{"huge weight ignored", []Member{mem("a", 1, 1<<21), mem("b", 1, 1)}, "b:1", 1, "", nil},
		{"unknown interface", []Member{mem("zz", 1, 1), mem("b", 1, 1)}, "b:1", 1, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Mask: DefaultMask, Interfaces: ifaces, Policies: []Policy{{Name: "p", Members: tt.members}}}
			p := renderOK(t, in)
			st := p.Policies[0]
			var got []string
			for _, a := range st.Active {
				got = append(got, fmt.Sprintf("%s:%d", a.Interface, a.Weight))
			}
			if strings.Join(got, " ") != tt.active || st.Total != tt.total {
				t.Errorf("active %v total %d, want %q total %d", got, st.Total, tt.active, tt.total)
			}
			if len(st.Active) == 0 && st.LastResort != tt.lastResort {
				t.Errorf("last resort %q, want %q", st.LastResort, tt.lastResort)
			}
			if tt.rules == nil {
				return
			}
			c := p.Table.Chains[slices.IndexFunc(p.Table.Chains, func(c *Chain) bool { return c.Name == "policy_p_ipv4" })]
			var rules []string
			for _, r := range c.Rules {
				rules = append(rules, r.String())
			}
			if !slices.Equal(rules, tt.rules) {
				t.Errorf("policy chain\n%s\nwant\n%s", strings.Join(rules, "\n"), strings.Join(tt.rules, "\n"))
			}
		})
	}
}

// TestPolicyDifferential checks random member lists against the obvious
// definition: the active set is every online member of the family whose
// metric is the lowest among online members (≤ 256), and the numgen map
// gives each exactly its weight.
func TestPolicyDifferential(t *testing.T) {
	seed := uint64(7)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	for iter := range 500 {
		var ifaces []Interface
		for i := 1; i <= 6; i++ {
			ifaces = append(ifaces, Interface{Name: fmt.Sprintf("i%d", i), ID: i, Family: Family(1 + next(2)),
				Enabled: next(5) > 0, Online: next(2) == 0, Device: fmt.Sprintf("eth%d", i)})
		}
		var members []Member
		for k := range 1 + next(8) {
			members = append(members, Member{Name: fmt.Sprintf("m%d", k), Interface: fmt.Sprintf("i%d", 1+next(6)),
				Metric: []int{1, 2, 3, 256, 257}[next(5)], Weight: 1 + next(10)})
		}
		p := renderOK(t, &Input{Mask: DefaultMask, Interfaces: ifaces, Policies: []Policy{{Name: "p", Members: members}}})
		for _, st := range p.Policies {
			best := 257
			for _, m := range members {
				ifc := ifaces[m.Interface[1]-'1']
				if ifc.Family == st.Family && ifc.Enabled && ifc.Online && m.Metric <= 256 {
					best = min(best, m.Metric)
				}
			}
			want := map[int]int{}
			for _, m := range members {
				ifc := ifaces[m.Interface[1]-'1']
				if ifc.Family == st.Family && ifc.Enabled && ifc.Online && m.Metric == best && m.Metric <= 256 {
					want[ifc.ID] += m.Weight
				}
			}
			got := map[int]int{}
			for _, a := range st.Active {
				got[a.ID] += a.Weight
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("iteration %d %s: active %v, want %v (members %v, ifaces %v)", iter, st.Family, got, want, members, ifaces)
			}
		}
	}
}

// FuzzRender renders inputs built from random bytes: no panic, and every
// plan is consistent.
func FuzzRender(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte("mwan3 rules and policies"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pos := 0
		next := func(n int) int {
			if pos >= len(data) {
				return 0
			}
			pos++
			return int(data[pos-1]) % n
		}
		in := &Input{Mask: Mask(0x3f00 >> next(3)), Logging: next(2) == 0, LogLevel: []string{"", "debug", "bogus"}[next(3)], NoIPv6: next(4) == 0}
		for i := 1; i <= 1+next(5); i++ {
			in.Interfaces = append(in.Interfaces, Interface{Name: fmt.Sprintf("w%d", i), ID: i, Family: Family(1 + next(2)),
				Enabled: next(3) > 0, Online: next(2) == 0, Device: []string{"", "eth0", "eth1", "bad name"}[next(4)]})
		}
		for k := range next(3) {
			pol := Policy{Name: fmt.Sprintf("p%d", k), LastResort: []string{"", "default", "blackhole", "x"}[next(4)]}
			for range next(4) {
				pol.Members = append(pol.Members, Member{Name: "m", Interface: fmt.Sprintf("w%d", 1+next(6)), Metric: next(300), Weight: next(4)})
			}
			in.Policies = append(in.Policies, pol)
		}
		for k := range next(6) {
			r := UserRule{Name: fmt.Sprintf("r%d", k%4), Family: Family(next(3)), Proto: []string{"", "tcp", "udp", "icmp", "x", "99"}[next(6)],
				Sticky: next(2) == 0, Logging: next(2) == 0,
				UsePolicy: []string{"", "default", "unreachable", "blackhole", "p0", "p1", "p9"}[next(7)],
				Ipset:     []string{"", "s", "mwan3_connected_ipv4", "sticky_x", "bad name"}[next(5)]}
			if next(2) == 0 {
				r.SrcIP = pfx([]string{"10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0"}[next(3)])
			}
			for range next(3) {
				m := []MaskedAddr{masked("0.0.0.1", "0.0.0.1"), masked("10.0.0.0", "255.0.0.0"), masked("2001:db8::1", "ffff::1"),
					masked("10.0.0.1", "::1"), {}}[next(5)]
				if next(2) == 0 {
					r.SrcMasked = append(r.SrcMasked, m)
				} else {
					r.DestMasked = append(r.DestMasked, m)
				}
			}
			if next(2) == 0 {
				r.DestPort = []PortRange{{uint16(next(256)), uint16(next(256))}}
			}
			if next(3) == 0 {
				r.SrcIface, r.SrcDevice = "lan", []string{"", "br-lan"}[next(2)]
			}
			in.Rules = append(in.Rules, r)
		}
		if next(2) == 0 {
			in.Uses = []Use{{Cgroup: uint64(next(1000)), Level: uint32(next(4)), Interface: "w1"}}
		}
		p, err := Render(in)
		if err != nil {
			return
		}
		checkPlan(t, p)
		_ = p.Dump()
	})
}
