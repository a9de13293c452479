package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// statusJSON is a status reply as mwan3d sends it: wan probed two targets
// (the others skipped by reliability), wanb lost its carrier and holds old
// figures, wan6 comes from a daemon without the rolling statistics.
const statusJSON = `{"interfaces": {
 "wan": {"age": 1, "online": 65, "offline": 0, "uptime": 70, "score": 10, "lost": 0, "turn": 6,
  "status": "online", "enabled": true, "running": true, "tracking": "active", "up": true,
  "track_ip": [
   {"ip": "1.0.0.1", "status": "up", "latency": 0, "packetloss": 0, "rtt_avg_ms": 1.5, "jitter_ms": 0.5, "loss_window": 0.0},
   {"ip": "1.1.1.1", "status": "up", "latency": 0, "packetloss": 0, "rtt_avg_ms": 2.5, "jitter_ms": 1.5, "loss_window": 0.2},
   {"ip": "208.67.222.222", "status": "skipped", "latency": 0, "packetloss": 0, "rtt_avg_ms": 0, "jitter_ms": 0, "loss_window": 0}]},
 "wanb": {"age": 0, "online": 0, "offline": 12, "uptime": 70, "score": 0, "lost": 0, "turn": 0,
  "status": "offline", "enabled": true, "running": true, "tracking": "active", "up": false,
  "track_ip": [
   {"ip": "1.0.0.1", "status": "down", "latency": 0, "packetloss": 0, "rtt_avg_ms": 0, "jitter_ms": 0, "loss_window": 1.0}]},
 "wan6": {"online": -5, "status": "online", "up": true,
  "track_ip": [{"ip": "2606:4700:4700::1001", "status": "up", "latency": 0, "packetloss": 0}]},
 "wanb6": {"status": "unknown", "track_ip": "not an array"}
}}`

func TestParseStatus(t *testing.T) {
	rep, err := ubus.ParseJSON([]byte(statusJSON))
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStatus(rep)
	if err != nil {
		t.Fatal(err)
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	want := map[string]ifaceStatus{
		"wan": {Status: "online", Online: 65 * time.Second, Up: true, HasQuality: true,
			Quality: quality{Valid: true, RTT: ms(2), Jitter: ms(1), Loss: 0.1}},
		"wanb": {Status: "offline", Offline: 12 * time.Second, HasQuality: true,
			Quality: quality{Valid: true, Loss: 1}},
		"wan6":  {Status: "online", Up: true},
		"wanb6": {Status: "unknown"},
	}
	if len(st) != len(want) {
		t.Errorf("%d interfaces, want %d", len(st), len(want))
	}
	for name, w := range want {
		if got := st[name]; got != w {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
}

func TestParseStatusErrors(t *testing.T) {
	for _, tt := range []struct{ name, json, want string }{
		{"no interfaces", `{"connected": {}}`, "without an interfaces table"},
		{"interface not a table", `{"interfaces": {"wan": 3}}`, `interface "wan" is not a table`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := ubus.ParseJSON([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseStatus(rep); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTargetsQuality(t *testing.T) {
	tbl := func(r, j, l any) ubus.Table {
		return ubus.Table{{Name: "rtt_avg_ms", Value: r}, {Name: "jitter_ms", Value: j}, {Name: "loss_window", Value: l}}
	}
	tests := []struct {
		name string
		tips []any
		want quality
		has  bool
	}{
		{"none", nil, quality{}, false},
		{"not tables", []any{"x", 3}, quality{}, false},
		{"keys missing", []any{ubus.Table{{Name: "rtt_avg_ms", Value: 1.0}}}, quality{}, false},
		{"nothing probed", []any{tbl(0.0, 0.0, 0.0)}, quality{}, true},
		{"all lost", []any{tbl(0.0, 0.0, 1.0), tbl(0.0, 0.0, 0.5)}, quality{Valid: true, Loss: 0.75}, true},
		{"integers", []any{tbl(int32(3), int32(1), int32(0))}, quality{Valid: true, RTT: 3 * time.Millisecond, Jitter: time.Millisecond}, true},
		{"nonsense", []any{tbl(-4.0, 2.0, 0.5)}, quality{Valid: true, Loss: 0.5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, has := targetsQuality(tt.tips)
			if got != tt.want || has != tt.has {
				t.Errorf("got %+v %v, want %+v %v", got, has, tt.want, tt.has)
			}
		})
	}
}

func TestSecondsAndMillis(t *testing.T) {
	if seconds(-3) != 0 || seconds(5) != 5*time.Second || seconds(1<<62) <= 0 {
		t.Error("seconds() does not clamp")
	}
	for _, v := range []float64{-1, 0, 1e300} {
		if msDuration(v) != 0 {
			t.Errorf("msDuration(%v) = %v, want 0", v, msDuration(v))
		}
	}
	if msDuration(1.5) != 1500*time.Microsecond {
		t.Errorf("msDuration(1.5) = %v", msDuration(1.5))
	}
}

func TestPingWindow(t *testing.T) {
	ms := time.Millisecond
	w := newPingWindow(4)
	if q := w.quality(); q.Valid {
		t.Errorf("empty window: %+v", q)
	}
	w.add([]time.Duration{9 * ms}, 3) // 9 lost lost
	w.add([]time.Duration{1 * ms, 3 * ms}, 2)
	// The window keeps the last 4: lost lost 1 3.
	q := w.quality()
	if !q.Valid || q.Loss != 0.5 || q.RTT != 2*ms || q.Jitter != ms {
		t.Errorf("quality %+v, want loss 0.5, RTT 2ms, jitter 1ms", q)
	}
	w.add(nil, 4)
	if q := w.quality(); q.Loss != 1 || q.RTT != 0 {
		t.Errorf("all lost: %+v", q)
	}
	if newPingWindow(0).size != 1 {
		t.Error("a window has room for at least one ping")
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(statusJSON))
	f.Add([]byte(`{"interfaces": {}}`))
	f.Add([]byte(`{"interfaces": {"wan": {"online": 9223372036854775807, "track_ip": [{"rtt_avg_ms": 1e308, "jitter_ms": -1, "loss_window": 2}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ubus.ParseJSON(data)
		if err != nil {
			return
		}
		st, err := parseStatus(rep)
		if err != nil {
			return
		}
		for name, s := range st {
			if s.Online < 0 || s.Offline < 0 || s.Quality.RTT < 0 || s.Quality.Jitter < 0 {
				t.Fatalf("%s: negative durations %+v", name, s)
			}
		}
	})
}
