package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// fakeInspector serves Inspector from fixed kernel state.
type fakeInspector struct {
	prios   map[nft.Family]map[int]bool
	routes  map[string]bool // "family table device" with a default route
	chains  map[string]bool
	ruleset string
	err     error
}

func (f *fakeInspector) RulePriorities(fam nft.Family) (map[int]bool, error) {
	return f.prios[fam], f.err
}
func (f *fakeInspector) DefaultRoute(fam nft.Family, table int, dev string) (bool, error) {
	return f.routes[fmt.Sprintf("%s %d %s", fam, table, dev)], nil
}
func (f *fakeInspector) Chains() (map[string]bool, error)        { return f.chains, nil }
func (f *fakeInspector) Ruleset(context.Context) (string, error) { return f.ruleset, f.err }
func prioSet(ps ...int) map[int]bool {
	m := map[int]bool{}
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// TestDiagInterfaces computes the detail bits of spec §8.2 for interfaces
// fully set up, torn down, half there and disabled.
func TestDiagInterfaces(t *testing.T) {
	cfg := mustConfig(t, testConfig)
	v := &view{running: true, cfg: cfg, ifaces: map[string]ifaceView{
		"wan":  {up: true, online: true, device: "eth1"},
		"wanb": {up: true, online: false, device: "eth2"},
		"wanc": {},
	}}
	k := &fakeInspector{
		prios: map[nft.Family]map[int]bool{
			nft.IPv4: prioSet(0, 1001, 2001, 3001, 1002, 3002, 32766),
			nft.IPv6: prioSet(0, 2003, 32766),
		},
		routes: map[string]bool{"ipv4 1 eth1": true},
		chains: map[string]bool{"iface_in_wan": true, "iface_in_wanb": true, "rules": true},
	}
	got, err := diagInterfaces(k, v, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	want := `{"wan":{"id":1,"family":"ipv4","enabled":true,"device":"eth1","hotplug":"online","rule_iif":true,"rule_mark":true,"rule_unreachable":true,"chain":true,"route":true,"detail":0},` +
		`"wanb":{"id":2,"family":"ipv4","enabled":true,"device":"eth2","hotplug":"offline","rule_iif":true,"rule_mark":false,"rule_unreachable":true,"chain":true,"route":false,"detail":18},` +
		`"wanc":{"id":3,"family":"ipv4","enabled":true,"device":"","hotplug":"offline","rule_iif":false,"rule_mark":false,"rule_unreachable":false,"chain":false,"route":false,"detail":31},` +
		`"wand":{"id":4,"family":"ipv4","enabled":false,"device":"","hotplug":"unknown","rule_iif":false,"rule_mark":false,"rule_unreachable":false,"chain":false,"route":false,"detail":31}}`
	if s := ubus.FormatJSON(encodeTable(t, got), -1); s != want {
		t.Errorf("diag:\n%s\nwant\n%s", s, want)
	}
	only, err := diagInterfaces(k, v, func(n string) bool { return n == "wanb" })
	if err != nil || len(only) != 1 || only[0].Name != "wanb" {
		t.Errorf("filtered diag: %v, %v", only, err)
	}
	v.running = false
	stopped, _ := diagInterfaces(k, v, func(n string) bool { return n == "wan" })
	if s := ubus.FormatJSON(encodeTable(t, stopped), -1); !strings.Contains(s, `"hotplug":"unknown"`) {
		t.Errorf("stopped: %s", s)
	}
	k.err = errors.New("netlink: boom")
	if _, err := diagInterfaces(k, v, func(string) bool { return true }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("error %v", err)
	}
}

// encodeTable round-trips a reply through the wire encoding, as a client
// sees it.
func encodeTable(t *testing.T, v any) ubus.Table {
	t.Helper()
	b, err := ubus.AppendTable(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := ubus.DecodeTable(b)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestIfaceInChainName checks that nft names an interface's chain as diag
// looks for it.
func TestIfaceInChainName(t *testing.T) {
	in := &nft.Input{Mask: 0x3f00, Interfaces: []nft.Interface{{Name: "wanb", ID: 2, Family: nft.IPv4, Enabled: true, Online: true, Device: "eth2"}}}
	plan, err := nft.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Table.Chains {
		if c.Name == ifaceInChain("wanb") {
			return
		}
	}
	t.Errorf("no chain %s in\n%s", ifaceInChain("wanb"), plan)
}

// TestUserRules lists the rules in force per family with their matches and
// counters.
func TestUserRules(t *testing.T) {
	p := netip.MustParsePrefix
	in := &nft.Input{Logging: true, Rules: []nft.UserRule{
		{Name: "https", Proto: "tcp", DestPort: []nft.PortRange{{First: 443, Last: 443}}, Sticky: true, UsePolicy: "balanced", Logging: true},
		{Name: "v4", Family: nft.IPv4, SrcIP: []netip.Prefix{p("192.168.1.0/24"), p("2001:db8::/32")},
			SrcMasked: []nft.MaskedAddr{{Addr: netip.MustParseAddr("0.0.0.1"), Mask: netip.MustParseAddr("0.0.0.1")}},
			SrcPort:   []nft.PortRange{{First: 1000, Last: 2000}}, SrcIface: "guest", SrcDevice: "br-guest", Ipset: "vpn", UsePolicy: "default"},
		{Name: "skipped", UsePolicy: "balanced"},
	}}
	vals := []nft.CounterValue{
		{CounterInfo: nft.CounterInfo{Kind: nft.CounterRule, Family: nft.IPv4, Rule: "https"}, Packets: 5, Bytes: 300},
		{CounterInfo: nft.CounterInfo{Kind: nft.CounterRule, Family: nft.IPv6, Rule: "https"}, Packets: 1, Bytes: 80},
		{CounterInfo: nft.CounterInfo{Kind: nft.CounterRule, Family: nft.IPv4, Rule: "v4"}, Packets: 7, Bytes: 700},
		{CounterInfo: nft.CounterInfo{Kind: nft.CounterMember, Family: nft.IPv4, Policy: "balanced", Interface: "wan"}, Packets: 9},
	}
	got := ubus.FormatJSON(encodeTable(t, userRules(in, vals)), -1)
	want := `{"ipv4":[` +
		`{"rule":"https","policy":"balanced","sticky":true,"logging":true,"proto":"tcp","src_ip":[],"dest_ip":[],"src_port":[],"dest_port":["443"],"src_iface":"","src_device":"","ipset":"","packets":5,"bytes":300},` +
		`{"rule":"v4","policy":"default","sticky":false,"logging":false,"proto":"","src_ip":["192.168.1.0/24","0.0.0.1/0.0.0.1"],"dest_ip":[],"src_port":["1000-2000"],"dest_port":[],"src_iface":"guest","src_device":"br-guest","ipset":"vpn","packets":7,"bytes":700}],` +
		`"ipv6":[{"rule":"https","policy":"balanced","sticky":true,"logging":true,"proto":"tcp","src_ip":[],"dest_ip":[],"src_port":[],"dest_port":["443"],"src_iface":"","src_device":"","ipset":"","packets":1,"bytes":80}]}`
	if got != want {
		t.Errorf("userrules:\n%s\nwant\n%s", got, want)
	}
	if got := ubus.FormatJSON(encodeTable(t, userRules(nil, nil)), -1); got != `{"ipv4":[],"ipv6":[]}` {
		t.Errorf("userrules before the first apply: %s", got)
	}
}

// TestCLIMethods calls use, userrules, diag and ruleset through ubus.
func TestCLIMethods(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wanb eth2 10.0.2.2 0x200")
	tests := []struct {
		method string
		args   ubus.Table
		status ubus.Status
		want   string
	}{
		{"use", ubus.Table{{Name: "interface", Value: "wanb"}}, 0,
			`{"interface":"wanb","family":"ipv4","device":"eth2","source":"10.0.2.2","mark":"0x200","cgroup":"","cgroup_error":"cgroup v2 is not available: the daemon runs without a cgroup directory (mwan3d run --cgroup)"}`},
		// wanc is enabled but netifd does not know it: no device.
		{"use", ubus.Table{{Name: "interface", Value: "wanc"}}, 0, `"device":"","source":"","mark":"0x300"`},
		{"use", ubus.Table{{Name: "interface", Value: "wand"}}, ubus.StatusNotFound, `{"error":"wand is not an enabled mwan3 interface"}`},
		{"use", ubus.Table{}, ubus.StatusInvalidArgument, `Expecting interface`},
		{"use", ubus.Table{{Name: "interface", Value: 3}}, ubus.StatusInvalidArgument, `must be a string`},
		{"userrules", nil, 0, `{"rule":"https","policy":"wan_wanb","sticky":true`},
		{"diag", nil, ubus.StatusNotSupported, `kernel inspection is not available`},
		{"diag", ubus.Table{{Name: "interface", Value: true}}, ubus.StatusInvalidArgument, `must be a string`},
		{"ruleset", nil, ubus.StatusNotSupported, `kernel inspection is not available`},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		id, err := h.client.LookupID(ctx, ObjectName)
		if err != nil {
			t.Fatal(err)
		}
		reps, err := h.client.Invoke(ctx, id, tt.method, tt.args)
		cancel()
		if ubus.StatusOf(err) != tt.status {
			t.Errorf("%s %v: %v, want %v", tt.method, tt.args, err, tt.status)
		}
		var got string
		if len(reps) > 0 {
			got = reps[0].String()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s %v = %s, want it to contain %s", tt.method, tt.args, got, tt.want)
		}
	}
}

// TestDiagAndRulesetMethods serves diag and ruleset from a fake kernel.
func TestDiagAndRulesetMethods(t *testing.T) {
	k := &fakeInspector{prios: map[nft.Family]map[int]bool{nft.IPv4: prioSet(1001, 2001, 3001)}, chains: map[string]bool{},
		ruleset: "table inet mwan3 {\n}\n"}
	d := &daemon{k: &Kernel{Inspect: k}}
	d.view.Store(&view{running: true, cfg: mustConfig(t, testConfig), ifaces: map[string]ifaceView{"wan": {online: true, device: "eth1"}}})
	rep, err := callHandler(t, d.handleDiag, ubus.Table{{Name: "interface", Value: "wan"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"interfaces":{"wan":{"id":1,"family":"ipv4","enabled":true,"device":"eth1","hotplug":"online","rule_iif":true,"rule_mark":true,"rule_unreachable":true,"chain":false,"route":false,"detail":24}},` +
		`"policies":{"balanced":{"last_resort":"unreachable"},"wan_wanb":{"last_resort":"unreachable"},"wanc_only":{"last_resort":"blackhole"}}}`
	if got := rep.String(); got != want {
		t.Errorf("diag:\n%s\nwant\n%s", got, want)
	}
	if rep, err = callHandler(t, d.handleRuleset, nil); err != nil || rep.String() != `{"table":"inet mwan3","text":"table inet mwan3 {\n}\n"}` {
		t.Errorf("ruleset: %s, %v", rep, err)
	}
	// Without the nft tool: the applied plan, or nothing before it.
	k.err = fmt.Errorf("list table: %w", exec.ErrNotFound)
	if rep, err = callHandler(t, d.handleRuleset, nil); err != nil || rep.String() != `{"table":"inet mwan3","text":""}` {
		t.Errorf("ruleset without nft nor plan: %s, %v", rep, err)
	}
	plan, err := nft.Render(&nft.Input{Mask: 0x3f00})
	if err != nil {
		t.Fatal(err)
	}
	v := *d.view.Load()
	v.plan = plan
	d.view.Store(&v)
	rep, err = callHandler(t, d.handleRuleset, nil)
	if text, _ := rep.GetString("text"); err != nil || !strings.HasPrefix(text, "# nft is not installed") || !strings.Contains(text, "table inet mwan3 {") {
		t.Errorf("ruleset without nft: %s, %v", rep, err)
	}
	k.err = errors.New("nft: boom")
	if _, err := callHandler(t, d.handleRuleset, nil); ubus.StatusOf(err) != ubus.StatusUnknownError {
		t.Errorf("ruleset failing: %v", err)
	}
}

// callHandler serves one method with handler on a test bus and calls it.
func callHandler(t *testing.T, handler ubus.Handler, args ubus.Table) (ubus.Table, error) {
	t.Helper()
	b := ubustest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	srv, err := ubus.Dial(ctx, b.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddObject(ctx, &ubus.Object{Name: "test", Methods: []ubus.Method{{Name: "m", Handler: handler}}}); err != nil {
		t.Fatal(err)
	}
	c, err := ubus.Dial(ctx, b.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Call(ctx, "test", "m", args)
}
