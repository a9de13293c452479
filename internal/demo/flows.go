package main

import "time"

// Families of the demo's flows, as indexes.
const (
	fam4 = iota
	fam6
	numFamilies
)

// famName names a family index as the configuration does.
func famName(f int) string {
	if f == fam6 {
		return "ipv6"
	}
	return "ipv4"
}

// flow is one new connection of the flow generator: when it started, its
// family and the WAN index the internet host saw it arrive over (-1 when
// it failed).
type flow struct {
	At     time.Duration // since the start of the demo
	Family int
	WAN    int
}

// maxFlows bounds the flows a flowLog keeps: far more than its window
// holds at the generator's rate.
const maxFlows = 1 << 14

// flowLog keeps the latest flows for the traffic shares.
type flowLog struct {
	keep   time.Duration // flows older than this (from the newest) are dropped
	flows  []flow        // in the order recorded: by At, give or take a flow's duration
	newest time.Duration
}

func newFlowLog(keep time.Duration) *flowLog { return &flowLog{keep: keep} }

// add records flows, and drops the leading ones older than keep before
// the newest (and any beyond maxFlows).
func (l *flowLog) add(fs ...flow) {
	l.flows = append(l.flows, fs...)
	for _, f := range fs {
		l.newest = max(l.newest, f.At)
	}
	cut := l.newest - l.keep
	drop := 0
	for drop < len(l.flows) && (l.flows[drop].At < cut || len(l.flows)-drop > maxFlows) {
		drop++
	}
	if drop > 0 {
		l.flows = append(l.flows[:0], l.flows[drop:]...)
	}
}

// tally is what one family's flows did in a window.
type tally struct {
	PerWAN []int // successful flows per WAN index
	Failed int
}

// Total is the number of flows, failed ones included.
func (t tally) Total() int {
	n := t.Failed
	for _, c := range t.PerWAN {
		n += c
	}
	return n
}

// Share is the part of all flows (failed ones included) that WAN i
// carried, 0..1; 0 without flows.
func (t tally) Share(i int) float64 {
	total := t.Total()
	if total == 0 || i < 0 || i >= len(t.PerWAN) {
		return 0
	}
	return float64(t.PerWAN[i]) / float64(total)
}

// tallies counts the flows of each family that ended in (now−window, now]
// over wans WANs; flows over an unknown WAN count as failed.
func (l *flowLog) tallies(now, window time.Duration, wans int) [numFamilies]tally {
	var out [numFamilies]tally
	for f := range out {
		out[f].PerWAN = make([]int, wans)
	}
	for _, fl := range l.flows {
		if fl.At <= now-window || fl.At > now || fl.Family < 0 || fl.Family >= numFamilies {
			continue
		}
		t := &out[fl.Family]
		if fl.WAN >= 0 && fl.WAN < wans {
			t.PerWAN[fl.WAN]++
		} else {
			t.Failed++
		}
	}
	return out
}
