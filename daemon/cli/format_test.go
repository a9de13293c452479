package cli

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/internal/golden"
	"github.com/mwan3d/mwan3d/ubus"
)

// loadReply reads a reply recorded as JSON (the ubus tool's typing).
func loadReply(t testing.TB, name string) ubus.Table {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ubus.ParseJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), got)
}

// Spec §8.2 and §8.3 print the situation of §7.6 (status-example.json).
const (
	specInterfaces = `Interface status:
 interface wan is online and tracking is active (online 02h:00m:12s, uptime 02h:00m:30s)
 interface wan6 is online and tracking is active (online 01h:59m:50s, uptime 02h:00m:26s)
 interface wanb is online and tracking is active (online 01h:55m:50s, uptime 02h:00m:28s)
 interface wanb6 is offline and tracking is active

`
	specPolicies = `Current ipv4 policies:
balanced:
 wanb (50%)
 wan (50%)
wan_only:
 wan (100%)
wan_wanb:
 wan (100%)
wanb_only:
 wanb (100%)
wanb_wan:
 wanb (100%)

Current ipv6 policies:
balanced:
 wan6 (100%)
wan_only:
 wan6 (100%)
wan_wanb:
 wan6 (100%)
wanb_only:
 unreachable
wanb_wan:
 wan6 (100%)

`
	// The legacy lines of spec §8.1.
	specHelp = `Syntax: mwan3 [command]

Available commands:
start                    Load iptables rules, ip rules and ip routes
stop                     Unload iptables rules, ip rules and ip routes
restart                  Reload iptables rules, ip rules and ip routes
ifup <iface>             Load rules and routes for specific interface
ifdown <iface>           Unload rules and routes for specific interface
interfaces               Show interfaces status
policies                 Show currently active policy
connected                Show directly connected networks
rules                    Show active rules
status                   Show all status
internal <ipv4|ipv6>     Show internal configuration <default: ipv4>
use <iface> <cmd>        Run a command bound to <iface> and avoid mwan3 rules
`
)

func TestSpecExamples(t *testing.T) {
	st, dg := loadReply(t, "status-example.json"), loadReply(t, "diag-example.json")
	var b strings.Builder
	writeInterfaces(&b, st, dg)
	if b.String() != specInterfaces {
		t.Errorf("interfaces:\n%s\nwant spec §8.2:\n%s", b.String(), specInterfaces)
	}
	b.Reset()
	writePolicies(&b, st, dg, true)
	if b.String() != specPolicies {
		t.Errorf("policies:\n%s\nwant spec §8.3:\n%s", b.String(), specPolicies)
	}
	b.Reset()
	writeHelp(&b)
	if !strings.HasPrefix(b.String(), specHelp) {
		t.Errorf("help:\n%s\nwant it to start with spec §8.1:\n%s", b.String(), specHelp)
	}
	for _, l := range strings.Split(b.String(), "\n")[3:16] {
		if len(l) <= 25 || l[24] != ' ' || l[25] == ' ' {
			t.Errorf("help line %q: the description does not start at column 26", l)
		}
	}
}

// TestGoldens prints every command from recorded and constructed replies.
func TestGoldens(t *testing.T) {
	st, dg := loadReply(t, "status-example.json"), loadReply(t, "diag-example.json")
	down, dgDown := loadReply(t, "status-down.json"), loadReply(t, "diag-down.json")
	rules := loadReply(t, "userrules.json")
	tests := []struct {
		name  string
		write func(b *strings.Builder)
	}{
		{"help", func(b *strings.Builder) { writeHelp(b) }},
		{"interfaces-example", func(b *strings.Builder) { writeInterfaces(b, st, dg) }},
		{"interfaces-down", func(b *strings.Builder) { writeInterfaces(b, down, dgDown) }},
		// Without diag (an older daemon) no detail codes are printed.
		{"interfaces-nodiag", func(b *strings.Builder) { writeInterfaces(b, down, nil) }},
		{"policies-down", func(b *strings.Builder) { writePolicies(b, down, dgDown, true) }},
		{"policies-noipv6", func(b *strings.Builder) { writePolicies(b, st, dg, false) }},
		{"connected-example", func(b *strings.Builder) { writeConnected(b, st, true) }},
		{"connected-noipv6", func(b *strings.Builder) { writeConnected(b, down, false) }},
		{"rules", func(b *strings.Builder) { writeRules(b, rules, true) }},
		{"rules-noipv6", func(b *strings.Builder) { writeRules(b, rules, false) }},
		{"status-stopped", func(b *strings.Builder) {
			writeInterfaces(b, nil, nil)
			writePolicies(b, nil, nil, true)
			writeConnected(b, nil, true)
			writeRules(b, nil, true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			tt.write(&b)
			checkGolden(t, tt.name, b.String())
		})
	}
}

func TestHMS(t *testing.T) {
	for _, tt := range []struct {
		s    int64
		want string
	}{
		{0, "00h:00m:00s"}, {59, "00h:00m:59s"}, {3600, "01h:00m:00s"}, {7212, "02h:00m:12s"},
		{359999, "99h:59m:59s"}, {360000, "100h:00m:00s"}, {400017, "111h:06m:57s"}, {-5, "00h:00m:00s"},
	} {
		if got := hms(tt.s); got != tt.want {
			t.Errorf("hms(%d) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// TestIptNum checks xtables_print_num's units and rounding.
func TestIptNum(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "    0 "}, {12, "   12 "}, {99999, "99999 "}, {100000, " 100K "}, {291234, " 291K "},
		{9999499, "9999K "}, {9999500, "  10M "}, {98765432, "  99M "}, {9999999999, "  10G "},
		{99999999999999, " 100T "}, {-1, "    0 "},
	} {
		if got := iptNum(tt.n); got != tt.want {
			t.Errorf("iptNum(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestRuleLine checks the columns against spec §8.5's lines.
func TestRuleLine(t *testing.T) {
	https := ubus.Table{{Name: "rule", Value: "https"}, {Name: "policy", Value: "balanced"}, {Name: "sticky", Value: true},
		{Name: "proto", Value: "tcp"}, {Name: "dest_port", Value: []any{"443"}}, {Name: "packets", Value: int32(12)}, {Name: "bytes", Value: int32(720)}}
	bal := ubus.Table{{Name: "rule", Value: "default_rule_v4"}, {Name: "policy", Value: "balanced"}, {Name: "proto", Value: "all"},
		{Name: "packets", Value: int32(4310)}, {Name: "bytes", Value: int32(291234)}}
	https6 := append(ubus.Table{}, https...)
	https6[5], https6[6] = ubus.Field{Name: "packets", Value: int32(3)}, ubus.Field{Name: "bytes", Value: int32(240)}
	for _, tt := range []struct {
		r    ubus.Table
		v6   bool
		want string
	}{
		{https, false, "   12   720 S https  tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports 443 "},
		{bal, false, " 4310  291K - balanced  all  --  *      *       0.0.0.0/0            0.0.0.0/0            "},
		{https6, true, "    3   240 S https  tcp      *      *       ::/0                 ::/0                 multiport dports 443 "},
	} {
		if got := ruleLine(tt.r, tt.v6, ""); got != tt.want {
			t.Errorf("ruleLine:\n got %q\nwant %q", got, tt.want)
		}
	}
}

func TestReleaseVersion(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='23.05.3'\nDISTRIB_REVISION='r23809'\n", "23.05.3"},
		{"DISTRIB_RELEASE=\"SNAPSHOT\"\n", "SNAPSHOT"},
		{"DISTRIB_RELEASE=24.10.0", "24.10.0"},
		{"DISTRIB_RELEASE=''\n", "unknown"},
		{"", "unknown"},
		{"DISTRIB_ID='OpenWrt'", "unknown"},
	} {
		if got := releaseVersion(tt.in); got != tt.want {
			t.Errorf("releaseVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzReleaseVersion(f *testing.F) {
	f.Add("DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='23.05.3'\n")
	f.Add("DISTRIB_RELEASE=\"\"")
	f.Add("DISTRIB_RELEASE='")
	f.Fuzz(func(t *testing.T, data string) {
		v := releaseVersion(data)
		if v == "" || strings.Contains(v, "\n") {
			t.Fatalf("releaseVersion(%q) = %q", data, v)
		}
	})
}

// TestInternal prints internal from constructed kernel state.
func TestInternal(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	st := &netState{
		Links: []ipLink{
			{Index: 1, Name: "lo", Flags: iffLoopback | iffUp | iffRunning | iffLowerUp, MTU: 65536, State: "UNKNOWN", TxQLen: 1000,
				Addrs: []ipAddr{{Prefix: p("127.0.0.1/8"), Scope: 254, Flags: 0x80, Label: "lo", Valid: lifetimeInfini, Pref: lifetimeInfini}}},
			{Index: 2, Name: "eth0", Flags: iffBroadcast | iffMulticast | iffUp | iffRunning | iffLowerUp, MTU: 1500, State: "UP"},
			{Index: 3, Name: "eth1", Peer: "if7", Flags: iffBroadcast | iffMulticast | iffUp, MTU: 1500, State: "DOWN", Group: 2, TxQLen: 1000,
				Addrs: []ipAddr{
					{Prefix: p("10.0.1.2/24"), Broadcast: a("10.0.1.255"), Flags: 0x80 | 0x200, Label: "eth1", Valid: lifetimeInfini, Pref: lifetimeInfini},
					{Prefix: p("10.0.1.3/24"), Flags: 0x01, Label: "eth1:1", Valid: 3599, Pref: 1799},
				}},
			{Index: 4, Name: "br-lan", Master: "", Flags: iffBroadcast | iffUp | iffRunning | iffLowerUp | 0x80000000, MTU: 1500, State: "UP",
				Addrs: []ipAddr{{Prefix: p("192.168.1.1/24"), Peer: p("192.168.1.2/32"), Flags: 0x80, Valid: lifetimeInfini, Pref: lifetimeInfini}}},
		},
		Main: []ipRoute{
			{Table: 254, Type: 1, Gw: a("10.0.1.1"), Dev: "eth1", Proto: 3, Metric: 10},
			{Table: 254, Type: 1, Dst: p("10.0.1.0/24"), Dev: "eth1", Proto: 2, Scope: 253, Src: a("10.0.1.2"), Flags: 16},
			{Table: 254, Type: 7, Dst: p("10.9.9.9/32"), Proto: 4},
			{Table: 254, Type: 1, Dst: p("0.0.0.0/0"), Proto: 200, Metric: 20, Hops: []ipNexthop{
				{Gw: a("10.0.1.1"), Dev: "eth1", Weight: 1}, {Gw: a("10.0.2.1"), Dev: "eth2", Weight: 3, Flags: 4}}},
			{Table: 254, Type: 42, Dst: p("10.8.0.0/16"), Dev: "eth2", Proto: 16},
		},
		Tables: map[int][]ipRoute{
			1:   {{Table: 1, Type: 1, Gw: a("10.0.1.1"), Dev: "eth1", Proto: 4, Metric: 10}},
			3:   {{Table: 3, Type: 1, Gw: a("10.0.2.1"), Dev: "eth2", Proto: 4}},
			250: {{Table: 250, Type: 6, Dst: p("10.0.0.0/8")}},
		},
		Rules: []ipRule{
			{Priority: 0, Action: ruleToTable, Table: 255, SuppressPL: -1},
			{Priority: 1001, Action: ruleToTable, Table: 1, Iif: "eth1", SuppressPL: -1},
			{Priority: 2001, Action: ruleToTable, Table: 1, HasMark: true, Mark: 0x100, Mask: 0x3f00, SuppressPL: -1},
			{Priority: 2061, Action: ruleBlackhole, HasMark: true, Mark: 0x3d00, Mask: 0x3f00, SuppressPL: -1},
			{Priority: 2062, Action: ruleUnreachable, HasMark: true, Mark: 0x3e00, Mask: 0x3f00, SuppressPL: -1},
			{Priority: 3001, Action: ruleUnreachable, HasMark: true, Mark: 0x100, Mask: 0x3f00, SuppressPL: -1},
			{Priority: 5000, Invert: true, Src: p("192.168.1.0/24"), Dst: p("10.1.2.3/32"), Oif: "eth2", Action: ruleProhibit, SuppressPL: -1},
			{Priority: 5001, HasMark: true, Mark: 0x7, Mask: 0xffffffff, Action: ruleGoto, Goto: 32766, SuppressPL: -1},
			{Priority: 5002, Action: ruleNop, SuppressPL: -1},
			{Priority: 5003, Action: ruleToTable, Table: 254, SuppressPL: 0},
			{Priority: 5004, Action: 99, SuppressPL: -1},
			{Priority: 32766, Action: ruleToTable, Table: 254, SuppressPL: -1},
			{Priority: 32767, Action: ruleToTable, Table: 253, SuppressPL: -1},
		},
	}
	var b strings.Builder
	writeInternal(&b, false, "23.05.3", st, nil, "table inet mwan3 {\n\tchain prerouting {\n\t}\n}\n")
	checkGolden(t, "internal-ipv4", b.String())

	st6 := &netState{Links: []ipLink{{Index: 2, Name: "eth1", Flags: iffUp | iffRunning | iffLowerUp, MTU: 1500, State: "UP",
		Addrs: []ipAddr{
			{Prefix: p("2001:db8:1::2/64"), Flags: 0x80 | 0x02, Valid: lifetimeInfini, Pref: lifetimeInfini},
			{Prefix: p("2001:db8:1::99/64"), Flags: 0x01 | 0x20, Valid: 600, Pref: 0},
			{Prefix: p("fe80::1/64"), Scope: 253, Flags: 0x80 | 0x800 | 0x40, Valid: lifetimeInfini, Pref: lifetimeInfini},
		}}},
		Main: []ipRoute{{Table: 254, Type: 1, Dst: p("2001:db8:1::/64"), Dev: "eth1", Proto: 2, Metric: 256}},
	}
	b.Reset()
	writeInternal(&b, true, "unknown", st6, nil, "")
	checkGolden(t, "internal-ipv6", b.String())

	b.Reset()
	writeInternal(&b, false, "unknown", nil, errors.New("netlink: permission denied"), "")
	checkGolden(t, "internal-error", b.String())
}

// BenchmarkStatusOutput prints `mwan3 status` for spec §7.6's situation.
func BenchmarkStatusOutput(b *testing.B) {
	st, dg, ur := loadReply(b, "status-example.json"), loadReply(b, "diag-example.json"), loadReply(b, "userrules.json")
	var out strings.Builder
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		writeInterfaces(&out, st, dg)
		writePolicies(&out, st, dg, true)
		writeConnected(&out, st, true)
		writeRules(&out, ur, true)
	}
}
