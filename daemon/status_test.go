package daemon

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/ubus"
)

// exampleSnapshot is spec §7.6's situation: the default config with all
// four interfaces enabled, wanb6 up but declared offline by its tracker.
func exampleSnapshot(t *testing.T) *Snapshot {
	cfg := allEnabled(t)
	online := map[string]bool{"wan": true, "wan6": true, "wanb": true}
	s := &Snapshot{Running: true, Connected: Connected{IPv4: []string{"192.168.1.0/24", "127.0.0.1"}, IPv6: []string{"fe80::/64"}}}
	for _, i := range cfg.Interfaces {
		is := IfaceSnapshot{Name: i.Name, Enabled: true, Up: true, Uptime: 7230, Status: "online", Tracking: "active", Age: 3, Online: 7212, Score: 10, Turn: 721}
		if !online[i.Name] {
			is.Status, is.Online, is.Offline, is.Score, is.Lost = "offline", 0, 412, 0, 164
		}
		for _, ip := range i.TrackIP {
			is.Targets = append(is.Targets, TargetSnapshot{IP: ip, Status: "up"})
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	for _, p := range cfg.Policies {
		for _, fam := range []config.Family{config.IPv4, config.IPv6} {
			ps := PolicySnapshot{Name: p.Name, LastResort: p.LastResort, Active: ActiveShares(cfg, p, fam, func(i string) bool { return online[i] })}
			if fam == config.IPv4 {
				s.Policies4 = append(s.Policies4, ps)
			} else {
				s.Policies6 = append(s.Policies6, ps)
			}
		}
	}
	return s
}

// replyJSON encodes the reply to blobmsg and prints it as the ubus CLI does.
func replyJSON(t *testing.T, tab ubus.Table) string {
	t.Helper()
	b, err := ubus.AppendTable(nil, tab)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ubus.DecodeTable(b)
	if err != nil {
		t.Fatal(err)
	}
	return ubus.FormatJSON(back, 0)
}

func TestStatusReplyShape(t *testing.T) {
	s := exampleSnapshot(t)
	out := replyJSON(t, s.StatusReply("", "", false))
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"interfaces", "connected", "policies"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}
	// legacy's field order inside an interface, then the new keys
	wan := out[strings.Index(out, `"wan":`):]
	wan = wan[:strings.Index(wan, `"track_ip"`)]
	order := []string{"age", "online", "offline", "uptime", "score", "lost", "turn", "status", "enabled", "running", "tracking", "up"}
	last := -1
	for _, k := range order {
		i := strings.Index(wan, `"`+k+`":`)
		if i <= last {
			t.Fatalf("field %q out of legacy order in %s", k, wan)
		}
		last = i
	}
	ifaces := got["interfaces"].(map[string]any)
	w := ifaces["wan"].(map[string]any)
	if w["status"] != "online" || w["running"] != true || w["up"] != true || w["age"] != float64(3) {
		t.Errorf("wan = %v", w)
	}
	tip := w["track_ip"].([]any)[0].(map[string]any)
	for _, k := range []string{"ip", "status", "latency", "packetloss"} {
		if _, ok := tip[k]; !ok {
			t.Errorf("track_ip entry lacks %q: %v", k, tip)
		}
	}
	if b6 := ifaces["wanb6"].(map[string]any); b6["status"] != "offline" || b6["offline"] != float64(412) {
		t.Errorf("wanb6 = %v", b6)
	}
	pol := got["policies"].(map[string]any)
	v4 := pol["ipv4"].(map[string]any)
	bal, _ := json.Marshal(v4["balanced"])
	if string(bal) != `[{"interface":"wanb","percent":50},{"interface":"wan","percent":50}]` {
		t.Errorf("ipv4 balanced = %s", bal)
	}
	if v6 := pol["ipv6"].(map[string]any); len(v6["wanb_only"].([]any)) != 0 {
		t.Errorf("ipv6 wanb_only = %v", v6["wanb_only"])
	}
}

func TestStatusReplySections(t *testing.T) {
	s := exampleSnapshot(t)
	tests := []struct {
		section, iface string
		filter         bool
		keys           string
	}{
		{"interfaces", "", false, "interfaces"},
		{"connected", "", false, "connected"},
		{"policies", "", false, "policies"},
		{"bogus", "", false, "interfaces connected policies"},
		{"", "", false, "interfaces connected policies"},
	}
	for _, tt := range tests {
		tab := s.StatusReply(tt.section, tt.iface, tt.filter)
		var keys []string
		for _, f := range tab {
			keys = append(keys, f.Name)
		}
		if strings.Join(keys, " ") != tt.keys {
			t.Errorf("section %q: keys %v, want %s", tt.section, keys, tt.keys)
		}
	}
	one := s.StatusReply("interfaces", "wanb", true)[0].Value.(ubus.Table)
	if len(one) != 1 || one[0].Name != "wanb" {
		t.Errorf("interface filter: %v", one)
	}
	if none := s.StatusReply("interfaces", "nosuch", true)[0].Value.(ubus.Table); len(none) != 0 {
		t.Errorf("unknown interface: %v", none)
	}
	// a stopped service reports empty connected arrays and policies objects
	s.Running = false
	var stopped struct {
		Connected map[string][]string
		Policies  map[string]map[string]any
	}
	out := replyJSON(t, s.StatusReply("", "", false))
	if err := json.Unmarshal([]byte(out), &stopped); err != nil {
		t.Fatal(err)
	}
	if c := stopped.Connected; c["ipv4"] == nil || c["ipv6"] == nil || len(c["ipv4"])+len(c["ipv6"]) != 0 {
		t.Errorf("stopped connected: %s", out)
	}
	if p := stopped.Policies; p["ipv4"] == nil || p["ipv6"] == nil || len(p["ipv4"])+len(p["ipv6"]) != 0 {
		t.Errorf("stopped policies: %s", out)
	}
}
