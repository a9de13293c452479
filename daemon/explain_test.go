package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/ubus"
)

// explainModel renders testConfig with wan and wanb up (online as given)
// and the guest network up on br-guest.
func explainModel(t *testing.T, online map[string]bool) (*nft.Input, *nft.Plan) {
	t.Helper()
	cfg, diags := config.Load("mwan3", []byte(testConfig))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	st := map[string]*ifaceState{
		"wan":  {up: true, device: "eth1", online: online["wan"]},
		"wanb": {up: true, device: "eth2", online: online["wanb"]},
	}
	dev := func(n string) string {
		if n == "guest" {
			return "br-guest"
		}
		return ""
	}
	conn := connectedNets{connected4: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("224.0.0.0/3")}}
	in, warns := nftInput(cfg, st, dev, conn, false)
	if len(warns) > 0 {
		t.Fatal(warns)
	}
	plan, err := nft.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, plan
}

func explainString(e Explanation) string {
	var parts []string
	for _, c := range e.Interfaces {
		parts = append(parts, fmt.Sprintf("%s:%d", c.Interface, c.Percent))
	}
	return fmt.Sprintf("%s %s %s %s [%s]", e.Stage, e.Rule, e.Policy, e.Action, strings.Join(parts, " "))
}

func TestExplain(t *testing.T) {
	both := map[string]bool{"wan": true, "wanb": true}
	tests := []struct {
		name   string
		online map[string]bool
		flow   Flow
		want   string
	}{
		{"https goes to wan", both, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), Proto: 6, DstPort: 443}, "rule https wan_wanb balance [wan:100]"},
		{"https falls back to wanb", map[string]bool{"wanb": true}, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), Proto: 6, DstPort: 443}, "rule https wan_wanb balance [wanb:100]"},
		{"https port range miss", both, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), Proto: 6, DstPort: 444}, "rule default_rule_v4 balanced balance [wan:75 wanb:25]"},
		{"udp 443 is not https", both, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), Proto: 17, DstPort: 443}, "rule default_rule_v4 balanced balance [wan:75 wanb:25]"},
		{"unknown proto does not match proto rules", both, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), Proto: -1, DstPort: 443}, "rule default_rule_v4 balanced balance [wan:75 wanb:25]"},
		{"dns to the listed net uses main", both, Flow{Family: nft.IPv4, Dst: addr("192.0.2.53"), Proto: 17, DstPort: 53}, "rule dns default main []"},
		{"dns elsewhere is balanced", both, Flow{Family: nft.IPv4, Dst: addr("8.8.8.8"), Proto: 17, DstPort: 53}, "rule default_rule_v4 balanced balance [wan:75 wanb:25]"},
		{"nothing online: last resort", nil, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), Proto: 1}, "rule default_rule_v4 balanced unreachable []"},
		{"guest network", both, Flow{Family: nft.IPv4, Dst: addr("203.0.113.1"), SrcIface: "guest"}, "rule from_guest wanc_only blackhole []"},
		{"connected destination bypasses", both, Flow{Family: nft.IPv4, Dst: addr("192.168.1.7"), Proto: 6, DstPort: 443}, "bypass   main []"},
		{"multicast bypasses", both, Flow{Family: nft.IPv4, Dst: addr("239.1.1.1")}, "bypass   main []"},
		{"arrives on wanb", both, Flow{Family: nft.IPv4, Src: addr("198.51.100.9"), Dst: addr("192.168.1.7"), SrcIface: "wanb"}, "iface_in   balance [wanb:100]"},
		{"ipv6 has no rule", both, Flow{Family: nft.IPv6, Dst: addr("2001:db8::1"), Proto: 6, DstPort: 80}, "none   main []"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, plan := explainModel(t, tt.online)
			if got := explainString(Explain(in, plan, tt.flow, nil)); got != tt.want {
				t.Errorf("Explain = %q, want %q", got, tt.want)
			}
		})
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseFlow(t *testing.T) {
	tests := []struct {
		args ubus.Table
		want string // Flow as %+v, or "error: <substring>"
	}{
		{ubus.Table{{Name: "dst", Value: "203.0.113.1"}}, "{Family:ipv4 Src:invalid IP Dst:203.0.113.1 Proto:-1 SrcPort:0 DstPort:0 SrcIface:}"},
		{ubus.Table{{Name: "dst", Value: "::ffff:203.0.113.1"}, {Name: "proto", Value: "TCP"}, {Name: "dport", Value: int32(443)}, {Name: "sport", Value: "1024"}},
			"{Family:ipv4 Src:invalid IP Dst:203.0.113.1 Proto:6 SrcPort:1024 DstPort:443 SrcIface:}"},
		{ubus.Table{{Name: "dst", Value: "2001:db8::1"}, {Name: "src", Value: "2001:db8::2"}, {Name: "proto", Value: int64(58)}, {Name: "family", Value: "ipv6"}, {Name: "src_iface", Value: "lan"}},
			"{Family:ipv6 Src:2001:db8::2 Dst:2001:db8::1 Proto:58 SrcPort:0 DstPort:0 SrcIface:lan}"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "proto", Value: "all"}}, "{Family:ipv4 Src:invalid IP Dst:10.0.0.1 Proto:-1 SrcPort:0 DstPort:0 SrcIface:}"},
		{ubus.Table{}, "error: required"},
		{ubus.Table{{Name: "dst", Value: int32(1)}}, `error: "dst" must be a string`},
		{ubus.Table{{Name: "dst", Value: "fe80::1%eth0"}}, "error: not an IP address"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "src", Value: "::1"}}, "error: different families"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "family", Value: "ipv6"}}, "error: does not match"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "proto", Value: int32(300)}}, "error: proto"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "proto", Value: ubus.Table{}}}, "error: proto"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "dport", Value: int32(0)}}, "error: dport"},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "sport", Value: "http"}}, "error: sport"},
	}
	for _, tt := range tests {
		f, err := ParseFlow(tt.args)
		got := fmt.Sprintf("%+v", f)
		if err != nil {
			got = "error: " + err.Error()
			if strings.HasPrefix(tt.want, "error: ") && strings.Contains(got, strings.TrimPrefix(tt.want, "error: ")) {
				continue
			}
		}
		if got != tt.want {
			t.Errorf("ParseFlow(%v) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

// FuzzParseFlow feeds arbitrary blobmsg tables to explain's argument
// parser and the explanation: never a panic, and a parsed flow is always
// of a consistent family.
func FuzzParseFlow(f *testing.F) {
	for _, args := range []ubus.Table{
		{{Name: "dst", Value: "203.0.113.1"}, {Name: "proto", Value: "tcp"}, {Name: "dport", Value: int32(443)}},
		{{Name: "dst", Value: "2001:db8::1"}, {Name: "src", Value: "2001:db8::2"}, {Name: "src_iface", Value: "wan"}},
		{{Name: "dst", Value: int8(1)}, {Name: "sport", Value: "99999"}},
	} {
		b, err := ubus.AppendTable(nil, args)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg, diags := config.Load("mwan3", []byte(testConfig))
	if diags.HasErrors() {
		f.Fatal(diags)
	}
	in, _ := nftInput(cfg, map[string]*ifaceState{"wan": {up: true, online: true, device: "eth1"}}, func(string) string { return "" }, connectedNets{}, false)
	plan, err := nft.Render(in)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		args, err := ubus.DecodeTable(b)
		if err != nil {
			return
		}
		fl, err := ParseFlow(args)
		if err != nil {
			return
		}
		if fl.Dst.Is4() != (fl.Family == nft.IPv4) || (fl.Src.IsValid() && fl.Src.Is4() != fl.Dst.Is4()) {
			t.Fatalf("inconsistent flow %+v", fl)
		}
		ex := Explain(in, plan, fl, nil)
		if ex.Action == "" || ex.Stage == "" {
			t.Fatalf("incomplete explanation %+v for %+v", ex, fl)
		}
	})
}

// TestExplainMaskedAddress: a rule with a non-contiguous mask (dest_ip
// 198.51.100.1/255.255.255.1, the odd addresses) matches as rendered.
func TestExplainMaskedAddress(t *testing.T) {
	in, _ := explainModel(t, map[string]bool{"wan": true, "wanb": true})
	odd := nft.UserRule{Name: "odd", Family: nft.IPv4, UsePolicy: "wan_wanb",
		DestMasked: []nft.MaskedAddr{{Addr: addr("198.51.100.1"), Mask: addr("255.255.255.1")}}}
	in.Rules = append([]nft.UserRule{odd}, in.Rules...)
	plan, err := nft.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ dst, want string }{
		{"198.51.100.1", "rule odd wan_wanb balance [wan:100]"},
		{"198.51.100.3", "rule odd wan_wanb balance [wan:100]"},
		{"198.51.100.2", "rule default_rule_v4 balanced balance [wan:75 wanb:25]"},
		{"198.51.100.4", "rule default_rule_v4 balanced balance [wan:75 wanb:25]"},
	} {
		f := Flow{Family: nft.IPv4, Dst: addr(tt.dst), Proto: 6, DstPort: 80}
		if got := explainString(Explain(in, plan, f, nil)); got != tt.want {
			t.Errorf("Explain(%s) = %q, want %q", tt.dst, got, tt.want)
		}
	}
}
