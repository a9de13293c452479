package main

import (
	"fmt"
	"time"
)

// observer watches for what the demo is meant to show, per family: the cut
// interface goes offline after the cut and new connections then avoid it
// (failover), and it comes back online after the restore and carries new
// connections again (failback).
type observer struct {
	names  [numFamilies]string // the cut interface per family: wan, wan6
	cutWAN int                 // its WAN index
	others [numFamilies]string // the interface that takes over (for messages)

	cutAt, restoreAt time.Duration // -1 until done
	down, up         [numFamilies]time.Duration
	during, after    [numFamilies]tally
}

// newObserver watches the interfaces names (IPv4, IPv6) of WAN cutWAN,
// with others taking over, over wans WANs.
func newObserver(names, others [numFamilies]string, cutWAN, wans int) *observer {
	o := &observer{names: names, others: others, cutWAN: cutWAN, cutAt: -1, restoreAt: -1}
	for f := range numFamilies {
		o.down[f], o.up[f] = -1, -1
		o.during[f].PerWAN = make([]int, wans)
		o.after[f].PerWAN = make([]int, wans)
	}
	return o
}

// cut and restore record the demo's actions.
func (o *observer) cut(at time.Duration)     { o.cutAt = at }
func (o *observer) restore(at time.Duration) { o.restoreAt = at }

// event records a daemon event.
func (o *observer) event(at time.Duration, e ifaceEvent) {
	for f, n := range o.names {
		if n == "" || e.Interface != n {
			continue
		}
		switch {
		case e.Action == "disconnected" && o.cutAt >= 0 && o.restoreAt < 0 && o.down[f] < 0:
			o.down[f] = at
		case e.Action == "connected" && o.restoreAt >= 0 && o.up[f] < 0:
			o.up[f] = at
		}
	}
}

// flow records a finished flow: it counts for the failover when it started
// while the interface was offline and not yet restored, for the failback
// when it started after the interface came back.
func (o *observer) flow(fl flow) {
	f := fl.Family
	if f < 0 || f >= numFamilies {
		return
	}
	var t *tally
	switch {
	case o.up[f] >= 0 && fl.At > o.up[f]:
		t = &o.after[f]
	case o.down[f] >= 0 && fl.At > o.down[f] && o.restoreAt < 0:
		t = &o.during[f]
	default:
		return
	}
	if fl.WAN >= 0 && fl.WAN < len(t.PerWAN) {
		t.PerWAN[fl.WAN]++
	} else {
		t.Failed++
	}
}

// failover tells whether family f failed over: the interface went
// offline, and then new connections got through, none over it.
func (o *observer) failover(f int) bool {
	d := o.during[f]
	return o.down[f] >= 0 && d.PerWAN[o.cutWAN] == 0 && d.Total()-d.Failed > 0
}

// failback tells whether family f failed back: the interface came online
// again and carried new connections.
func (o *observer) failback(f int) bool {
	return o.up[f] >= 0 && o.after[f].PerWAN[o.cutWAN] > 0
}

// summary describes what was seen, one line per family and phase, and
// whether both phases were seen for every watched family.
func (o *observer) summary() ([]string, bool) {
	var lines []string
	ok := true
	for f, name := range o.names {
		if name == "" {
			continue
		}
		d, a := o.during[f], o.after[f]
		switch {
		case o.cutAt < 0:
			lines = append(lines, fmt.Sprintf("failover %-5s not tried: the demo ended before the cut", name))
			ok = false
		case o.down[f] < 0:
			lines = append(lines, fmt.Sprintf("failover %-5s NOT SEEN: no disconnected event after the cut", name))
			ok = false
		default:
			verdict := "ok"
			if !o.failover(f) {
				verdict, ok = "FAILED", false
			}
			lines = append(lines, fmt.Sprintf("failover %-5s %s: offline %s after the cut; then %d new connections over %s, %d over %s, %d failed",
				name, verdict, fmtDuration(o.down[f]-o.cutAt), d.Total()-d.Failed-d.PerWAN[o.cutWAN], o.others[f],
				d.PerWAN[o.cutWAN], name, d.Failed))
		}
		switch {
		case o.restoreAt < 0:
			lines = append(lines, fmt.Sprintf("failback %-5s not tried: the demo ended before the restore", name))
			ok = false
		case o.up[f] < 0:
			lines = append(lines, fmt.Sprintf("failback %-5s NOT SEEN: no connected event after the restore (a longer -duration shows it)", name))
			ok = false
		default:
			verdict := "ok"
			if !o.failback(f) {
				verdict, ok = "FAILED", false
			}
			lines = append(lines, fmt.Sprintf("failback %-5s %s: online %s after the restore; then %d of %d new connections over %s",
				name, verdict, fmtDuration(o.up[f]-o.restoreAt), a.PerWAN[o.cutWAN], a.Total(), name))
		}
	}
	return lines, ok
}
