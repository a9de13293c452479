package main

import (
	"fmt"
	"math"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// ifaceStatus is what the demo shows of one interface of the daemon's
// status reply (spec §7.3, plus mwan3d's per-target rolling statistics).
type ifaceStatus struct {
	Status  string        // tracker status: online, offline, connecting, …
	Online  time.Duration // since it went online, 0 when not online
	Offline time.Duration // since it went offline, 0 when online
	Up      bool          // netifd's up
	// Quality is the mean of the targets' rolling statistics over the
	// targets probed in the window; HasQuality tells whether the daemon
	// reports them at all (rtt_avg_ms, jitter_ms, loss_window).
	Quality    quality
	HasQuality bool
}

// quality is latency, jitter and loss towards one WAN's targets.
type quality struct {
	Valid  bool // measured: anything was probed
	RTT    time.Duration
	Jitter time.Duration
	Loss   float64 // 0..1
}

// parseStatus reads `ubus call mwan3 status {"section":"interfaces"}`.
func parseStatus(rep ubus.Table) (map[string]ifaceStatus, error) {
	ifs, ok := rep.GetTable("interfaces")
	if !ok {
		return nil, fmt.Errorf("status reply without an interfaces table: %s", rep)
	}
	out := make(map[string]ifaceStatus, len(ifs))
	for _, f := range ifs {
		t, ok := f.Value.(ubus.Table)
		if !ok {
			return nil, fmt.Errorf("status reply: interface %q is not a table", f.Name)
		}
		var s ifaceStatus
		s.Status, _ = t.GetString("status")
		online, _ := t.GetInt("online")
		offline, _ := t.GetInt("offline")
		s.Online, s.Offline = seconds(online), seconds(offline)
		s.Up, _ = t.GetBool("up")
		tips, _ := t.GetArray("track_ip")
		s.Quality, s.HasQuality = targetsQuality(tips)
		out[f.Name] = s
	}
	return out, nil
}

// seconds converts a status reply's seconds, clamping nonsense.
func seconds(n int64) time.Duration {
	const maxSeconds = int64(math.MaxInt64 / time.Second)
	return time.Duration(min(max(n, 0), maxSeconds)) * time.Second
}

// targetsQuality averages the rolling statistics of the targets that were
// probed in the window (an answered probe has an RTT, a lost one a loss);
// has tells whether any target carries the statistics at all.
func targetsQuality(tips []any) (q quality, has bool) {
	var rtt, jitter, loss float64
	var answered, probed int
	for _, v := range tips {
		t, ok := v.(ubus.Table)
		if !ok {
			continue
		}
		r, okR := t.GetFloat("rtt_avg_ms")
		j, okJ := t.GetFloat("jitter_ms")
		l, okL := t.GetFloat("loss_window")
		if !okR || !okJ || !okL {
			continue
		}
		has = true
		if r <= 0 && l <= 0 {
			continue // not probed in the window (skipped by reliability)
		}
		probed++
		loss += l
		if r > 0 {
			answered++
			rtt += r
			jitter += j
		}
	}
	if probed == 0 {
		return quality{}, has
	}
	q = quality{Valid: true, Loss: loss / float64(probed)}
	if answered > 0 {
		q.RTT = msDuration(rtt / float64(answered))
		q.Jitter = msDuration(jitter / float64(answered))
	}
	return q, has
}

// msDuration converts milliseconds to a duration (non-finite or negative
// values give 0).
func msDuration(ms float64) time.Duration {
	if math.IsNaN(ms) || ms <= 0 || ms > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// pingWindow keeps the outcomes of the demo's own latest pings through
// one WAN: the round-trip time of each, or -1 when it was lost.
type pingWindow struct {
	size int
	rtts []time.Duration
}

func newPingWindow(size int) *pingWindow { return &pingWindow{size: max(size, 1)} }

// add records pings: the answered ones' RTTs and the number sent.
func (w *pingWindow) add(rtts []time.Duration, sent int) {
	for i := range max(sent, len(rtts)) {
		r := time.Duration(-1)
		if i < len(rtts) {
			r = rtts[i]
		}
		w.rtts = append(w.rtts, r)
	}
	if over := len(w.rtts) - w.size; over > 0 {
		w.rtts = append(w.rtts[:0], w.rtts[over:]...)
	}
}

// quality is the mean RTT, its standard deviation (jitter, as the daemon
// computes it) and the loss of the window.
func (w *pingWindow) quality() quality {
	if len(w.rtts) == 0 {
		return quality{}
	}
	var sum, sq float64
	n := 0
	for _, r := range w.rtts {
		if r < 0 {
			continue
		}
		ms := float64(r) / float64(time.Millisecond)
		sum += ms
		sq += ms * ms
		n++
	}
	q := quality{Valid: true, Loss: float64(len(w.rtts)-n) / float64(len(w.rtts))}
	if n > 0 {
		mean := sum / float64(n)
		q.RTT = msDuration(mean)
		q.Jitter = msDuration(math.Sqrt(max(sq/float64(n)-mean*mean, 0)))
	}
	return q
}
