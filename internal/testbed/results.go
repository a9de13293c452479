package testbed

import (
	"slices"
	"time"
)

// probe is one probe of a stream: when it was sent and answered, and the
// WAN that carried it.
type probe struct {
	sent, recv time.Time
	wan        int // -1 until answered
}

// StreamResult summarises a stream.
type StreamResult struct {
	Sent, Received int
	SendErrors     int   // probes that could not be sent (e.g. no route)
	PerWAN         []int // answers per WAN index; answers from no known WAN are not counted
	// LongestGap is the longest time between the sending of two answered
	// probes with only unanswered ones in between; the start and the end of
	// the stream count as answered. With no loss it is about the interval.
	LongestGap time.Duration
	// Switches lists the changes of WAN between consecutive answered probes.
	Switches []Switch
}

// Switch is a move of the stream's traffic from one WAN to another.
type Switch struct {
	From, To int
	At       time.Duration // send time of the first probe on To, since the start
	Gap      time.Duration // since the send time of the last answered probe on From
}

// summarize computes a StreamResult from the probes in sending order.
func summarize(probes []probe, sendErrs, wans int) StreamResult {
	r := StreamResult{Sent: len(probes), SendErrors: sendErrs, PerWAN: make([]int, wans)}
	if len(probes) == 0 {
		return r
	}
	lastOK := probes[0].sent // the start counts as answered
	lastWAN := -1
	for _, p := range probes {
		if p.recv.IsZero() {
			continue
		}
		r.Received++
		if p.wan >= 0 && p.wan < wans {
			r.PerWAN[p.wan]++
		}
		r.LongestGap = max(r.LongestGap, p.sent.Sub(lastOK))
		if lastWAN >= 0 && p.wan != lastWAN {
			r.Switches = append(r.Switches, Switch{From: lastWAN, To: p.wan,
				At: p.sent.Sub(probes[0].sent), Gap: p.sent.Sub(lastOK)})
		}
		lastOK, lastWAN = p.sent, p.wan
	}
	r.LongestGap = max(r.LongestGap, probes[len(probes)-1].sent.Sub(lastOK))
	return r
}

// PingResult is the outcome of NS.Ping.
type PingResult struct {
	Sent, Received int
	RTTs           []time.Duration // of the answered pings, in sending order
}

// Loss is the share of unanswered pings, 0..1.
func (r PingResult) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// Median is the median round-trip time (0 without answers).
func (r PingResult) Median() time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	s := slices.Clone(r.RTTs)
	slices.Sort(s)
	return s[len(s)/2]
}
