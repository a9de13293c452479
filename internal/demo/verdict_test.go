package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/golden"
)

// scenario drives an observer through a run: steps happen at their time.
type step struct {
	at     time.Duration
	cut    bool
	restor bool
	event  *ifaceEvent
	flows  []flow
}

func runScenario(steps []step) *observer {
	o := newObserver([numFamilies]string{"wan", "wan6"}, [numFamilies]string{"wanb", "wanb6"}, 0, 2)
	for _, s := range steps {
		switch {
		case s.cut:
			o.cut(s.at)
		case s.restor:
			o.restore(s.at)
		case s.event != nil:
			o.event(s.at, *s.event)
		}
		for _, f := range s.flows {
			f.At = s.at
			o.flow(f)
		}
	}
	return o
}

func flows(family int, wans ...int) []flow {
	var out []flow
	for _, w := range wans {
		out = append(out, flow{Family: family, WAN: w})
	}
	return out
}

func TestObserver(t *testing.T) {
	s := time.Second
	ev := func(iface, action string) *ifaceEvent { return &ifaceEvent{Interface: iface, Action: action} }
	both := append(flows(fam4, 0, 1), flows(fam6, 0, 1)...)
	good := []step{
		{at: 1 * s, flows: both},
		{at: 2 * s, event: ev("wan", "disconnected")}, // before the cut: ignored
		{at: 3 * s, cut: true},
		{at: 3 * s, flows: flows(fam4, -1)}, // in flight at the cut
		{at: 3100 * time.Millisecond, event: ev("wan", "disconnected")},
		{at: 3200 * time.Millisecond, event: ev("wan6", "disconnected")},
		{at: 3200 * time.Millisecond, event: ev("wanb", "connecting")}, // not watched
		{at: 4 * s, flows: append(flows(fam4, 1, 1, -1), flows(fam6, 1)...)},
		{at: 5 * s, restor: true},
		{at: 6 * s, flows: flows(fam4, 1, 1)}, // not yet back
		{at: 9 * s, event: ev("wan", "connected")},
		{at: 9 * s, event: ev("wan6", "connected")},
		{at: 10 * s, flows: both},
	}
	tests := []struct {
		name   string
		steps  []step
		ok     bool
		golden string
	}{
		{"failover and failback", good, true, "verdict-ok.golden"},
		{"ended before the cut", good[:2], false, "verdict-early.golden"},
		{"ended before the restore", good[:8], false, "verdict-no-restore.golden"},
		{"no failback event", good[:10], false, "verdict-no-failback.golden"},
		{"traffic kept using wan", append(append([]step(nil), good[:7]...),
			step{at: 4 * s, flows: flows(fam4, 0, 1)}, step{at: 5 * s, restor: true}), false, "verdict-leak.golden"},
		{"back online but unused", append(append([]step(nil), good[:12]...),
			step{at: 10 * s, flows: flows(fam4, 1)}, step{at: 10 * s, flows: flows(fam6, 0)}), false, "verdict-unused.golden"},
		{"no disconnected event", []step{{at: s, cut: true}, {at: 2 * s, flows: both}, {at: 3 * s, restor: true}}, false, "verdict-no-event.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, ok := runScenario(tt.steps).summary()
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), strings.Join(lines, "\n")+"\n")
		})
	}
}

func TestObserverIgnoresUnknownFamilies(t *testing.T) {
	o := newObserver([numFamilies]string{"wan", ""}, [numFamilies]string{"wanb", ""}, 0, 2)
	o.flow(flow{Family: 7, WAN: 0})
	o.flow(flow{Family: -1, WAN: 0})
	lines, ok := o.summary()
	if ok || len(lines) != 2 {
		t.Errorf("summary %q, %v: want two lines (IPv4 only), not ok", lines, ok)
	}
}
