package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/golden"
)

// demoRows are the rows of the two-WAN demo with a status each.
func demoRows(wanStatus ifaceStatus, wanKnown bool) []row {
	ms := time.Millisecond
	online := ifaceStatus{Status: "online", Online: 65 * time.Second, Up: true}
	return []row{
		{Name: "wan", Device: "eth1", Family: fam4, WAN: 0, Known: wanKnown, Status: wanStatus,
			Quality: quality{Valid: true, RTT: 1234 * time.Microsecond, Jitter: 250 * time.Microsecond}},
		{Name: "wan6", Device: "eth1", Family: fam6, WAN: 0, Known: wanKnown, Status: wanStatus,
			Quality: quality{Valid: true, Loss: 1}},
		{Name: "wanb", Device: "eth2", Family: fam4, WAN: 1, Known: true, Status: online,
			Quality: quality{Valid: true, RTT: 23456 * time.Microsecond, Jitter: 1500 * time.Microsecond, Loss: 0.25}},
		{Name: "wanb6", Device: "eth2", Family: fam6, WAN: 1, Known: true, Status: online,
			Quality: quality{Valid: true, RTT: 345 * ms, Jitter: 12 * ms}},
	}
}

func TestRender(t *testing.T) {
	events := []event{
		{At: 8123 * time.Millisecond, Source: srcDemo, Text: "cut wan's carrier"},
		{At: 8150 * time.Millisecond, Source: srcDaemon, Text: "wan disconnected (eth1): status offline, out of the policies"},
	}
	tests := []struct {
		name string
		v    view
	}{
		{"balanced", view{Now: 4200 * time.Millisecond, End: 74 * time.Second, Phase: "balancing over both WANs; cutting wan in 4s",
			Rows:    demoRows(ifaceStatus{Status: "online", Online: 65 * time.Second, Up: true}, true),
			Tallies: [numFamilies]tally{{PerWAN: []int{48, 48}}, {PerWAN: []int{50, 46}}}, Window: 3 * time.Second,
			Legend: []string{"LATENCY/JITTER/LOSS: explained", "NEW CONNECTIONS: explained"}}},
		{"failover", view{Now: 9 * time.Second, End: 74 * time.Second, Phase: "FAILOVER",
			Rows:    demoRows(ifaceStatus{Status: "offline", Offline: 2 * time.Second}, true),
			Tallies: [numFamilies]tally{{PerWAN: []int{0, 90}, Failed: 6}, {PerWAN: []int{0, 96}}}, Window: 3 * time.Second,
			EventsTitle: "events:", Events: events}},
		{"no status, no flows", view{Now: 100 * time.Millisecond, End: 22 * time.Second, Phase: "starting",
			Rows:    demoRows(ifaceStatus{}, false),
			Tallies: [numFamilies]tally{{PerWAN: []int{0, 0}}, {PerWAN: []int{0, 0}}}, Window: 5 * time.Second,
			Legend: []string{"status call failed: timeout"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			name = strings.ReplaceAll(name, ",", "")
			golden.Check(t, filepath.Join("testdata", "render-"+name+".golden"), render(tt.v))
		})
	}
}

func TestBar(t *testing.T) {
	for s, want := range map[float64]string{
		0: "....................", 0.5: "##########..........", 1: "####################",
		-1: "....................", 2: "####################", 0.026: "#...................",
	} {
		if got := bar(s); got != want {
			t.Errorf("bar(%v) = %q, want %q", s, got, want)
		}
	}
}

func TestFmtMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0.00ms", 1234 * time.Microsecond: "1.23ms", 23456 * time.Microsecond: "23.5ms", 345 * time.Millisecond: "345ms",
	} {
		if got := fmtMillis(d); got != want {
			t.Errorf("fmtMillis(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFrame(t *testing.T) {
	text := "aé\nbcd\n"
	tests := []struct {
		name        string
		tty         bool
		prev, width int
		want        string
	}{
		{"plain", false, 0, 0, "\naé\nbcd\n"},
		{"plain later, narrow", false, 2, 1, "\naé\nbcd\n"},
		{"terminal, first", true, 0, 0, "aé" + ansiClearLine + "\nbcd" + ansiClearLine + "\n" + ansiClearDown},
		{"terminal, later", true, 5, 80, "\x1b[5F" + "aé" + ansiClearLine + "\nbcd" + ansiClearLine + "\n" + ansiClearDown},
		{"terminal, narrow", true, 2, 2, "\x1b[2F" + "aé" + ansiClearLine + "\nbc" + ansiClearLine + "\n" + ansiClearDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, lines := frame(text, tt.tty, tt.prev, tt.width)
			if got != tt.want || lines != 2 {
				t.Errorf("frame() = %q, %d; want %q, 2", got, lines, tt.want)
			}
		})
	}
}

func BenchmarkRender(b *testing.B) {
	v := view{Now: 9 * time.Second, End: 74 * time.Second, Phase: "FAILOVER",
		Rows:    demoRows(ifaceStatus{Status: "offline", Offline: 2 * time.Second}, true),
		Tallies: [numFamilies]tally{{PerWAN: []int{0, 90}, Failed: 6}, {PerWAN: []int{0, 96}}}, Window: 3 * time.Second}
	for i := range ttyEvents {
		v.Events = append(v.Events, event{At: time.Duration(i) * time.Second, Source: srcDaemon, Text: "wan connected (eth1)"})
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = frame(render(v), true, 20, 120)
	}
}
