package main

import (
	"slices"
	"testing"
	"time"
)

func TestTallies(t *testing.T) {
	ms := time.Millisecond
	l := newFlowLog(10 * time.Second)
	l.add(flow{At: 100 * ms, Family: fam4, WAN: 0}) // outside every window below
	l.add(
		flow{At: 1000 * ms, Family: fam4, WAN: 0},
		flow{At: 1500 * ms, Family: fam4, WAN: 1},
		flow{At: 2000 * ms, Family: fam4, WAN: 1},
		flow{At: 2000 * ms, Family: fam4, WAN: -1},
		flow{At: 2500 * ms, Family: fam6, WAN: 1},
		flow{At: 2500 * ms, Family: fam6, WAN: 7}, // unknown WAN: failed
		flow{At: 2600 * ms, Family: 5, WAN: 0},    // unknown family: ignored
		flow{At: 3500 * ms, Family: fam4, WAN: 0}, // after now
	)
	got := l.tallies(3000*ms, 2500*ms, 2) // (500ms, 3000ms]
	if !slices.Equal(got[fam4].PerWAN, []int{1, 2}) || got[fam4].Failed != 1 {
		t.Errorf("ipv4 %+v, want [1 2] and 1 failed", got[fam4])
	}
	if !slices.Equal(got[fam6].PerWAN, []int{0, 1}) || got[fam6].Failed != 1 {
		t.Errorf("ipv6 %+v, want [0 1] and 1 failed", got[fam6])
	}
	if n := got[fam4].Total(); n != 4 {
		t.Errorf("Total() = %d, want 4", n)
	}
	for i, want := range map[int]float64{0: 0.25, 1: 0.5, 2: 0, -1: 0} {
		if s := got[fam4].Share(i); s != want {
			t.Errorf("Share(%d) = %v, want %v", i, s, want)
		}
	}
	if s := (tally{PerWAN: []int{0, 0}}).Share(0); s != 0 {
		t.Errorf("share without flows = %v", s)
	}
}

func TestFlowLogDropsOldFlows(t *testing.T) {
	l := newFlowLog(time.Second)
	for i := range 100 {
		l.add(flow{At: time.Duration(i) * 100 * time.Millisecond, Family: fam4, WAN: 0})
	}
	// Kept: from 9.9 s − 1 s = 8.9 s on.
	if len(l.flows) != 11 || l.flows[0].At != 8900*time.Millisecond {
		t.Errorf("kept %d flows from %v, want 11 from 8.9s", len(l.flows), l.flows[0].At)
	}
	big := newFlowLog(time.Hour)
	batch := make([]flow, maxFlows+10)
	big.add(batch...)
	if len(big.flows) != maxFlows {
		t.Errorf("kept %d flows, want the bound %d", len(big.flows), maxFlows)
	}
	big.add()
	if len(big.flows) != maxFlows {
		t.Errorf("adding nothing changed the log to %d flows", len(big.flows))
	}
	// Flows are recorded when they end, so a long one may come after a
	// newer one: the newest start sets the cut, and only leading flows
	// older than it go.
	mixed := newFlowLog(time.Second)
	mixed.add(flow{At: 5 * time.Second}, flow{At: 3 * time.Second})
	mixed.add(flow{At: 4500 * time.Millisecond}, flow{At: 6 * time.Second})
	if len(mixed.flows) != 4 || mixed.newest != 6*time.Second {
		t.Errorf("out of order: kept %v, newest %v; want all 4, 6s", mixed.flows, mixed.newest)
	}
	mixed.add(flow{At: 7500 * time.Millisecond})
	if len(mixed.flows) != 1 {
		t.Errorf("kept %v, want only 7.5s", mixed.flows)
	}
	empty := newFlowLog(time.Second)
	empty.add()
	if len(empty.flows) != 0 {
		t.Error("adding nothing to an empty log added flows")
	}
}

func BenchmarkTallies(b *testing.B) {
	l := newFlowLog(maxWindow)
	// A minute of the generator: 2 families × 32 flows a second.
	for i := range 60 * 64 {
		l.add(flow{At: time.Duration(i) * time.Second / 64, Family: i % 2, WAN: i % 3})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = l.tallies(time.Minute, 3*time.Second, 2)
	}
}
