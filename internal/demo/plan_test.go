package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/internal/golden"
)

// cutIfaces returns wan and wan6 of the demo configuration.
func cutIfaces(t *testing.T, interval int) (*demoConfig, []*config.Interface) {
	t.Helper()
	d, err := buildConfig(defaultConfig, interval)
	if err != nil {
		t.Fatal(err)
	}
	var out []*config.Interface
	for _, n := range []string{"wan", "wan6"} {
		i, err := d.iface(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, i)
	}
	return d, out
}

func TestPlanTimeline(t *testing.T) {
	s := time.Second
	tests := []struct {
		name                       string
		interval                   int
		mode                       string
		cutAfter, outage, duration time.Duration
		detect, failback, wantOut  time.Duration
		wantDur                    time.Duration
		short                      bool
	}{
		// Carrier: offline at once; back after up-1 recovery intervals.
		{"carrier, default timings", 0, cutCarrier, 8 * s, 0, 0, 1 * s, 41 * s, 11 * s, 70 * s, false},
		{"carrier, interval 1", 1, cutCarrier, 3 * s, 4 * s, 0, 1 * s, 5 * s, 4 * s, 22 * s, false},
		{"carrier, given duration too short", 1, cutCarrier, 3 * s, 4 * s, 10 * s, 1 * s, 5 * s, 4 * s, 10 * s, true},
		{"carrier, given duration enough", 1, cutCarrier, 3 * s, 4 * s, 12 * s, 1 * s, 5 * s, 4 * s, 12 * s, false},
		// Upstream, defaults: phase 10 + 5 failed rounds of 4 s + 4 pauses
		// of 10 s = 70 s; back: a failed round 4 + pause 10 + 4 × 10.
		{"upstream, default timings", 0, cutUpstream, 8 * s, 0, 0, 70 * s, 54 * s, 80 * s, 152 * s, false},
		{"upstream, interval 1", 1, cutUpstream, 2 * s, 0, 0, 25 * s, 9 * s, 35 * s, 56 * s, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cut := cutIfaces(t, tt.interval)
			tl, err := planTimeline(cut, tt.mode, tt.cutAfter, tt.outage, tt.duration)
			if err != nil {
				t.Fatal(err)
			}
			if tl.Detect != tt.detect || tl.Failback != tt.failback || tl.Outage != tt.wantOut || tl.Duration != tt.wantDur || tl.Short != tt.short {
				t.Errorf("got detect %v failback %v outage %v duration %v short %v; want %v %v %v %v %v",
					tl.Detect, tl.Failback, tl.Outage, tl.Duration, tl.Short, tt.detect, tt.failback, tt.wantOut, tt.wantDur, tt.short)
			}
			if tl.restoreAt() != tt.cutAfter+tl.Outage {
				t.Errorf("restoreAt() = %v", tl.restoreAt())
			}
		})
	}
}

func TestPlanTimelineErrors(t *testing.T) {
	_, cut := cutIfaces(t, 0)
	untracked := *cut[0]
	untracked.TrackIP = nil
	tests := []struct {
		name string
		cut  []*config.Interface
		mode string
		want string
	}{
		{"no interface", nil, cutCarrier, "no interface"},
		{"unknown mode", cut, "unplug", `cut mode "unplug"`},
		{"untracked", []*config.Interface{&untracked}, cutCarrier, "not tracked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planTimeline(tt.cut, tt.mode, time.Second, 0, 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestIntro(t *testing.T) {
	rows := []row{
		{Name: "wan", Device: "eth1", Family: fam4, WAN: 0}, {Name: "wan6", Device: "eth1", Family: fam6, WAN: 0},
		{Name: "wanb", Device: "eth2", Family: fam4, WAN: 1}, {Name: "wanb6", Device: "eth2", Family: fam6, WAN: 1},
	}
	tests := []struct {
		name     string
		interval int
		mode     string
		duration time.Duration
	}{
		{"carrier", 0, cutCarrier, 0},
		{"upstream", 0, cutUpstream, 0},
		{"short", 1, cutCarrier, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, cut := cutIfaces(t, tt.interval)
			tl, err := planTimeline(cut, tt.mode, 8*time.Second, 0, tt.duration)
			if err != nil {
				t.Fatal(err)
			}
			targets, _ := d.targets()
			got := intro(d, tl, rows, cut[0], []string{"wan", "wan6"}, targets[:2], []string{"dns.example"})
			golden.Check(t, filepath.Join("testdata", "intro-"+tt.name+".golden"), got)
		})
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 850 * time.Millisecond: "850ms", 4200 * time.Millisecond: "4.2s", 4 * time.Second: "4s",
		41 * time.Second: "41s", 65 * time.Second: "1m05s", 3720 * time.Second: "1h02m", -2 * time.Second: "-2s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
