package track

import (
	"math"
	"time"
)

// Quality is the rolling link quality towards one target over the last
// Window, measured from every finished probe (like dpinger): average
// round-trip time, its standard deviation (jitter) and the loss.
type Quality struct {
	Window      time.Duration
	Sent        int           // probes sent in the window
	Received    int           // probes answered in the window
	RTTAvg      time.Duration // average round-trip time of the answered probes
	RTTStdDev   time.Duration // population standard deviation of the round-trip times
	LossPercent float64       // 100 × (Sent − Received) / Sent; 0 without probes
}

// qualitySlot aggregates one finished probe.
type qualitySlot struct {
	at         time.Time
	sent, recv int
	rttMs      float64 // sum of RTTs in ms
	rttSq      float64 // sum of squared RTTs in ms²
}

// qualityRing is a fixed-size ring of the latest probes of one target. It
// never grows: when probes are more frequent than its size allows for the
// window, the oldest ones fall out early.
type qualityRing struct {
	slots []qualitySlot
	next  int
}

// qualitySlots sizes a ring for p: one slot per round that fits in the
// window at the shortest pause, plus one, within 2..maxQualitySlots.
func qualitySlots(p *Params) int {
	pause := min(p.Interval, p.FailureInterval, p.RecoveryInterval)
	if pause < time.Second {
		pause = time.Second
	}
	n := int(p.QualityWindow/pause) + 2
	return min(max(n, 2), maxQualitySlots)
}

func newQualityRing(n int) *qualityRing {
	return &qualityRing{slots: make([]qualitySlot, n)}
}

// add records a finished probe.
func (q *qualityRing) add(at time.Time, r Result) {
	if r.Sent <= 0 {
		return
	}
	q.slots[q.next] = qualitySlot{
		at:    at,
		sent:  r.Sent,
		recv:  min(r.Received, r.Sent),
		rttMs: float64(r.rttSum) / float64(time.Millisecond),
		rttSq: r.rttSq,
	}
	q.next = (q.next + 1) % len(q.slots)
}

// stats summarises the probes recorded in (now − window, now].
func (q *qualityRing) stats(now time.Time, window time.Duration) Quality {
	st := Quality{Window: window}
	var sum, sq float64
	for i := range q.slots {
		s := &q.slots[i]
		if s.at.IsZero() || now.Sub(s.at) >= window {
			continue
		}
		st.Sent += s.sent
		st.Received += s.recv
		sum += s.rttMs
		sq += s.rttSq
	}
	if st.Sent > 0 {
		st.LossPercent = 100 * float64(st.Sent-st.Received) / float64(st.Sent)
	}
	if st.Received > 0 {
		n := float64(st.Received)
		mean := sum / n
		variance := max(sq/n-mean*mean, 0)
		st.RTTAvg = time.Duration(mean * float64(time.Millisecond))
		st.RTTStdDev = time.Duration(math.Sqrt(variance) * float64(time.Millisecond))
	}
	return st
}
