package daemon

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/internal/netifdtest"
	"github.com/mwan3d/mwan3d/track"
	"github.com/mwan3d/mwan3d/ubus"
)

// TestReload covers reloads through ubus and SIGHUP: a good one touches
// only the trackers whose options changed, a bad one keeps everything.
func TestReload(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wanb eth2 10.0.2.2 0x200")
	tests := []struct {
		name    string
		config  string
		sighup  bool
		applied bool
		calls   []string // tracker calls, exactly
		errSub  string
		active  string // balanced afterwards
	}{
		{
			name:    "new track target for wanb only",
			config:  strings.Replace(testConfig, "list track_ip '198.51.100.3'", "list track_ip '198.51.100.9'", 1),
			applied: true, calls: []string{"reconfigure wanb"}, active: "wan wanb",
		},
		{
			name:    "syntax error keeps the running state",
			config:  testConfig + "\nconfig rule 'broken\n",
			applied: false, errSub: "mwan3:", active: "wan wanb",
		},
		{
			name:   "unchanged file by SIGHUP touches nothing",
			config: strings.Replace(testConfig, "list track_ip '198.51.100.3'", "list track_ip '198.51.100.9'", 1),
			sighup: true, applied: true, active: "wan wanb",
		},
		{
			name: "wanb removed from balanced, wand enabled",
			config: strings.NewReplacer("list use_member 'wanb_m1_w1'\n", "",
				"option enabled '0'", "option enabled '1'").Replace(testConfig),
			applied: true, calls: []string{"reconfigure wanb", "start wand paused=true"}, active: "wan",
		},
		{
			name:    "wanb disabled stops its tracker",
			config:  strings.Replace(testConfig, "option enabled '1'\n\toption family 'ipv4'\n\tlist track_ip '198.51.100.3'", "option enabled '0'\n\toption family 'ipv4'\n\tlist track_ip '198.51.100.3'", 1),
			applied: true, calls: []string{"stop wanb", "stop wand"}, active: "wan",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applies := h.nft.Applies()
			h.writeConfig(tt.config)
			if tt.sighup {
				h.reload <- struct{}{}
				h.mustCall("rules", nil) // the loop handled the reload before this call
			} else {
				rep := h.mustCall("reload", nil)
				applied, _ := rep.GetBool("applied")
				if applied != tt.applied {
					t.Errorf("applied = %v: %v", applied, rep)
				}
				errs, _ := rep.GetArray("errors")
				if tt.errSub != "" && (len(errs) == 0 || !strings.Contains(fmt.Sprint(errs[0]), tt.errSub)) {
					t.Errorf("errors %v, want one with %q", errs, tt.errSub)
				}
				if !tt.applied && h.nft.Applies() != applies {
					t.Errorf("a refused reload applied a ruleset")
				}
			}
			if got := h.active("balanced"); got != tt.active {
				t.Errorf("balanced = %q, want %q", got, tt.active)
			}
			got := h.trackers.takeCalls()
			slices.Sort(got)
			if !slices.Equal(got, tt.calls) {
				t.Errorf("tracker calls %q, want %q", got, tt.calls)
			}
		})
	}
}

// TestReloadRenumbers: moving an interface section changes its id, so its
// probes get the new mark without a restart of the tracker.
func TestReloadRenumbers(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100")
	moved := strings.Replace(testConfig, "config interface 'wan'\n", "config interface 'wanx'\n\toption enabled '0'\n\nconfig interface 'wan'\n", 1)
	h.writeConfig(moved)
	if rep := h.mustCall("reload", nil); !isTrue(rep, "applied") {
		t.Fatalf("reload: %v", rep)
	}
	if got := h.trackers.takeCalls(); !slices.Equal(got, []string{"ifupdate wan eth1 10.0.1.2 0x200"}) {
		t.Errorf("tracker calls %q", got)
	}
}

// TestStop: the shutdown events, then nothing of ours is left.
func TestStop(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wanb eth2 10.0.2.2 0x200")
	h.trackers.emit("wan", track.ActionConnected, "eth1", true)
	h.hooks(2)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	hooks := h.hooks(4)
	want := []string{
		"hotplug-call ACTION=connected DEVICE=eth1 FIRSTCONNECT=1 INTERFACE=wan",
		"mwan3.user ACTION=connected DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=disconnected DEVICE= INTERFACE=wan MWAN3_SHUTDOWN=1",
		"mwan3.user ACTION=disconnected DEVICE= INTERFACE=wan",
	}
	if !slices.Equal(hooks, want) {
		t.Errorf("hooks:\n%s\nwant:\n%s", strings.Join(hooks, "\n"), strings.Join(want, "\n"))
	}
	if h.nft.Current() != nil {
		t.Error("nft table left")
	}
	if !h.routes.cleaned {
		t.Error("routes not cleaned")
	}
	if calls := h.trackers.takeCalls(); !slices.Contains(calls, "close") {
		t.Errorf("trackers not closed: %q", calls)
	}
	for _, d := range []string{"mwan3", "mwan3track"} {
		if _, err := os.Stat(filepath.Join(h.dir, "run", d)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	if paths := h.broker.Paths(); slices.Contains(paths, ObjectName) {
		t.Errorf("mwan3 object still registered: %v", paths)
	}
}

// TestBadConfigAtStart: a configuration with errors refuses to start.
func TestBadConfigAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mwan3")
	if err := os.WriteFile(path, []byte("config globals 'globals\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Run(t.Context(), Options{ConfigPath: path, StateDir: dir, Kernel: &Kernel{}, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Run = %v", err)
	}
	if err := Run(t.Context(), Options{ConfigPath: filepath.Join(dir, "none"), Kernel: &Kernel{}}); err == nil {
		t.Error("Run without a configuration file succeeded")
	}
}

// exampleNetifd is spec §7.6's situation in netifd: wan/wan6 on eth1,
// wanb/wanb6 on eth2, all up.
func exampleNetifd(h *harness) {
	v6 := func(name string, n int) netifdtest.Interface {
		i := netifdWAN(name, n)
		i.IPv4 = nil
		i.IPv6 = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("2001:db8:%d::2/64", n))}
		i.Routes = []netifdtest.Route{{Target: netip.MustParsePrefix("::/0"), Nexthop: netip.MustParseAddr("fe80::1")}}
		return i
	}
	h.addNetifd(true, netifdWAN("wan", 1), v6("wan6", 1), netifdWAN("wanb", 2), v6("wanb6", 2))
}

// TestStatusExample compares `ubus call mwan3 status` with spec §7.6 for
// the default configuration with every interface enabled.
func TestStatusExample(t *testing.T) {
	data, err := os.ReadFile("../config/testdata/default.conf")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, strings.ReplaceAll(string(data), "option enabled '0'", "option enabled '1'"))
	exampleNetifd(h)
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wan6 eth1 2001:db8:1::2 0x200", "ifup wanb eth2 10.0.2.2 0x300", "ifup wanb6 eth2 2001:db8:2::2 0x400")
	for _, name := range []string{"wan", "wan6", "wanb", "wanb6"} {
		h.trackers.set(name, func(s *track.Snapshot) {
			s.Status, s.Score, s.Turn, s.Time, s.Online = track.StatusOnline, 10, 700, 997, 280
			for i := range s.Targets {
				s.Targets[i].State = track.TargetUp
				if i >= 2 {
					s.Targets[i].State = track.TargetSkipped
				}
			}
		})
	}
	h.trackers.emit("wanb6", track.ActionDisconnected, "eth2", false)
	h.trackers.set("wanb6", func(s *track.Snapshot) { s.Online, s.Offline, s.Score, s.Lost = 0, 588, 0, 164 })
	h.eventually("wanb6 offline", func() bool { return h.ubusEvents(5)[4] == "disconnected wanb6 eth2 offline online=false" })

	rep := h.mustCall("status", nil)
	out := ubus.FormatJSON(rep, 0)
	var got struct {
		Interfaces map[string]map[string]any `json:"interfaces"`
		Connected  map[string][]string       `json:"connected"`
		Policies   map[string]map[string][]struct {
			Interface string `json:"interface"`
			Percent   int    `json:"percent"`
		} `json:"policies"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if keys := topKeys(t, out); !slices.Equal(keys, []string{"interfaces", "connected", "policies"}) {
		t.Errorf("top-level keys %q", keys)
	}
	wan := got.Interfaces["wan"]
	wantWan := map[string]any{"age": 3.0, "online": 720.0, "offline": 0.0, "score": 10.0, "lost": 0.0, "turn": 700.0,
		"status": "online", "enabled": true, "running": true, "tracking": "active", "up": true}
	for k, v := range wantWan {
		if wan[k] != v {
			t.Errorf("interfaces.wan.%s = %v, want %v", k, wan[k], v)
		}
	}
	if up, ok := wan["uptime"].(float64); !ok || up < 0 {
		t.Errorf("uptime %v", wan["uptime"])
	}
	b6 := got.Interfaces["wanb6"]
	if b6["status"] != "offline" || b6["offline"] != 412.0 || b6["online"] != 0.0 || b6["lost"] != 164.0 || b6["up"] != true {
		t.Errorf("wanb6 = %v", b6)
	}
	tips, _ := wan["track_ip"].([]any)
	var states []string
	for _, x := range tips {
		m := x.(map[string]any)
		states = append(states, fmt.Sprintf("%s=%s/%v/%v", m["ip"], m["status"], m["latency"], m["packetloss"]))
	}
	if want := []string{"1.0.0.1=up/0/0", "1.1.1.1=up/0/0", "208.67.222.222=skipped/0/0", "208.67.220.220=skipped/0/0"}; !slices.Equal(states, want) {
		t.Errorf("wan track_ip %q", states)
	}
	pol, _ := json.Marshal(got.Policies)
	wantPol := `{"ipv4":{"balanced":[{"interface":"wanb","percent":50},{"interface":"wan","percent":50}],` +
		`"wan_only":[{"interface":"wan","percent":100}],"wan_wanb":[{"interface":"wan","percent":100}],` +
		`"wanb_only":[{"interface":"wanb","percent":100}],"wanb_wan":[{"interface":"wanb","percent":100}]},` +
		`"ipv6":{"balanced":[{"interface":"wan6","percent":100}],"wan_only":[{"interface":"wan6","percent":100}],` +
		`"wan_wanb":[{"interface":"wan6","percent":100}],"wanb_only":[],"wanb_wan":[{"interface":"wan6","percent":100}]}}`
	if string(pol) != wantPol {
		t.Errorf("policies:\n%s\nwant:\n%s", pol, wantPol)
	}
	if c := got.Connected["ipv4"]; !slices.Contains(c, "192.168.1.0/24") || !slices.Contains(c, "192.168.1.1") || !slices.Contains(c, "224.0.0.0/3") {
		t.Errorf("connected %v", got.Connected)
	}
	// Sections and the interface filter (spec §7.2).
	for _, tt := range []struct {
		args ubus.Table
		want string
	}{
		{ubus.Table{{Name: "section", Value: "interfaces"}, {Name: "interface", Value: "wan"}}, `{"interfaces":{"wan":`},
		{ubus.Table{{Name: "section", Value: "connected"}}, `{"connected":{"ipv4":[`},
		{ubus.Table{{Name: "section", Value: "policies"}}, `{"policies":{"ipv4":{"wan_only":`},
		{ubus.Table{{Name: "interface", Value: "nosuch"}}, `{"interfaces":{},"connected":`},
	} {
		if got := h.mustCall("status", tt.args).String(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("status %v = %.80s…, want prefix %s", tt.args, got, tt.want)
		}
	}
	if _, err := h.call("status", ubus.Table{{Name: "section", Value: 1}}); ubus.StatusOf(err) != ubus.StatusInvalidArgument {
		t.Errorf("status with a number: %v", err)
	}
}

// topKeys lists the keys of the top-level JSON object in order.
func topKeys(t *testing.T, s string) []string {
	dec := json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestRulesCounters reads the counters back through ubus.
func TestRulesCounters(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.nft.SetCounter("rule_https_ipv4", 12, 3400)
	h.nft.SetCounter("policy_balanced_ipv4_m1", 7, 700)
	rep := h.mustCall("rules", nil)
	out := rep.String()
	for _, want := range []string{
		`{"rule":"https","family":"ipv4","policy":"wan_wanb","packets":12,"bytes":3400}`,
		`"balanced":{"members":[{"interface":"wan","packets":7,"bytes":700}`,
		`"wanc_only":{"members":[{"interface":"wanc","packets":0,"bytes":0}],"last_resort":{"action":"blackhole","packets":0,"bytes":0}}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules reply lacks %s:\n%s", want, out)
		}
	}
}

// TestExplainCall checks explain's arguments and answers through ubus.
func TestExplainCall(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.addNetifd(true, netifdtest.Interface{Name: "guest", Device: "br-guest", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.2.1/24")}})
	h.start()
	tests := []struct {
		args   ubus.Table
		status ubus.Status
		want   string
	}{
		{ubus.Table{{Name: "dst", Value: "203.0.113.9"}, {Name: "proto", Value: "tcp"}, {Name: "dport", Value: 443}},
			0, `"stage":"rule","rule":"https","policy":"wan_wanb","sticky":true,"action":"balance","interfaces":[{"interface":"wan","device":"eth1","probability":1.000000,"percent":100}]`},
		{ubus.Table{{Name: "dst", Value: "203.0.113.9"}, {Name: "proto", Value: "udp"}},
			0, `"rule":"default_rule_v4","policy":"balanced","sticky":false,"action":"balance","interfaces":[{"interface":"wan","device":"eth1","probability":0.750000,"percent":75},{"interface":"wanb","device":"eth2","probability":0.250000,"percent":25}]`},
		{ubus.Table{{Name: "dst", Value: "192.0.2.53"}, {Name: "proto", Value: 17}, {Name: "dport", Value: "53"}},
			0, `"rule":"dns","policy":"default","sticky":false,"action":"main"`},
		{ubus.Table{{Name: "dst", Value: "203.0.113.9"}, {Name: "src_iface", Value: "guest"}},
			0, `"rule":"from_guest","policy":"wanc_only","sticky":false,"action":"blackhole"`},
		{ubus.Table{{Name: "dst", Value: "192.168.1.20"}},
			0, `"stage":"bypass","sticky":false,"action":"main"`},
		{ubus.Table{{Name: "dst", Value: "2001:db8::1"}},
			0, `"family":"ipv6","stage":"none","sticky":false,"action":"main"`},
		{ubus.Table{{Name: "dst", Value: "203.0.113.9"}, {Name: "src", Value: "10.0.1.1"}, {Name: "src_iface", Value: "wan"}},
			0, `"stage":"iface_in","sticky":false,"action":"balance","interfaces":[{"interface":"wan"`},
		{ubus.Table{{Name: "dst", Value: "not-an-ip"}}, ubus.StatusInvalidArgument, ""},
		{ubus.Table{{Name: "src", Value: "10.0.0.1"}}, ubus.StatusInvalidArgument, ""},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "dport", Value: 70000}}, ubus.StatusInvalidArgument, ""},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "proto", Value: "bogus"}}, ubus.StatusInvalidArgument, ""},
		{ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "family", Value: "ipv6"}}, ubus.StatusInvalidArgument, ""},
		{ubus.Table{{Name: "dst", Value: true}}, ubus.StatusInvalidArgument, ""},
	}
	for _, tt := range tests {
		rep, err := h.call("explain", tt.args)
		if ubus.StatusOf(err) != tt.status {
			t.Errorf("explain %v: %v, want %v", tt.args, err, tt.status)
			continue
		}
		if tt.want != "" && !strings.Contains(rep.String(), tt.want) {
			t.Errorf("explain %v =\n%s\nwant it to contain\n%s", tt.args, rep, tt.want)
		}
	}
}

func isTrue(t ubus.Table, name string) bool {
	v, _ := t.GetBool(name)
	return v
}
