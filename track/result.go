package track

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Prober probes one target. Implementations are bound to one interface
// (Binding) and one set of Params; they are safe for concurrent use, since
// the targets of a round are probed at the same time. A Prober that holds
// resources (the native ping keeps its socket) also implements io.Closer;
// the tracker closes it when it replaces or stops it.
type Prober interface {
	// Probe sends Params.Count probes to target (legacy's `-c`) and
	// returns when every reply arrived or could no longer arrive in time.
	// If ctx is done first it returns at once with Err wrapping ctx.Err().
	// Probe never panics on bad input: an unresolvable target, a device
	// that vanished or garbage replies give a Result with Received < Sent
	// and Err saying why.
	Probe(ctx context.Context, target string) Result
}

// ProberFactory makes the Prober of an interface. The tracker asks for a
// new one whenever its Params or Binding change.
type ProberFactory interface {
	NewProber(p Params, b Binding) (Prober, error)
}

// Result is what one probe of one target (Params.Count packets or
// requests) reported.
type Result struct {
	Sent     int   // probes sent
	Received int   // probes answered in time
	Err      error // why a probe failed (the last reason), or nil

	rttSum         time.Duration
	rttMin, rttMax time.Duration
	rttSq          float64 // sum of squared RTTs in ms²
}

// AddReply records one answered probe and its round-trip time.
func (r *Result) AddReply(rtt time.Duration) {
	if r.Received == 0 || rtt < r.rttMin {
		r.rttMin = rtt
	}
	r.rttMax = max(r.rttMax, rtt)
	r.Received++
	r.rttSum += rtt
	ms := float64(rtt) / float64(time.Millisecond)
	r.rttSq += ms * ms
}

// Latency is the average round-trip time of the answered probes (zero
// without replies).
func (r Result) Latency() time.Duration {
	if r.Received == 0 {
		return 0
	}
	return r.rttSum / time.Duration(r.Received)
}

// LossPercent is the integer percentage of unanswered probes, rounded
// down (legacy parsed the integer from the tools' output); 100 when
// nothing was sent.
func (r Result) LossPercent() int {
	if r.Sent <= 0 || r.Received <= 0 {
		return 100
	}
	if r.Received >= r.Sent {
		return 0
	}
	return (r.Sent - r.Received) * 100 / r.Sent
}

// TargetState is a target's verdict in one round (TRACK_<target> file).
type TargetState string

// Target states.
const (
	TargetUp      TargetState = "up"
	TargetDown    TargetState = "down"
	TargetSkipped TargetState = "skipped"
)

// lostLatency is what legacy records as latency on total loss.
const lostLatency = 999999

// outcome is the verdict on one target in one round.
type outcome struct {
	target  string
	state   TargetState
	probed  bool // legacy would have probed it (not skipped for reliability)
	quality bool // latency and loss decided (check_quality): write LATENCY_/LOSS_
	latency int  // ms, with quality
	loss    int  // percent, with quality
	result  Result
	ready   bool // result holds the finished probe
	aborted bool // the probe was interrupted by ifup/ifdown: a failure
}

// success reports whether r passes the method's plain reachability test:
// at least one reply (ping, arping, httping, nslookup), or no probe lost
// (nping, whose summary must say "Lost: 0").
func success(m Method, r Result) bool {
	switch m {
	case MethodNpingTCP, MethodNpingUDP, MethodNpingICMP, MethodNpingARP:
		return r.Sent > 0 && r.Received >= r.Sent
	default:
		return r.Received > 0
	}
}

// classify turns a finished probe into the target's state (spec §5.4).
func classify(p *Params, o *outcome) {
	r := o.result
	if o.aborted {
		r.Received = 0
	}
	if !p.quality() {
		o.quality = false
		if success(p.method(), r) {
			o.state = TargetUp
		} else {
			o.state = TargetDown
		}
		return
	}
	o.quality = true
	o.loss, o.latency = r.LossPercent(), lostLatency
	if o.loss < 100 {
		o.latency = int(r.Latency() / time.Millisecond)
	}
	failLat, recLat := durationMs(p.FailureLatency), durationMs(p.RecoveryLatency)
	switch {
	case o.loss >= p.FailureLoss || o.latency >= failLat:
		o.state = TargetDown
	case o.loss <= p.RecoveryLoss && o.latency <= recLat:
		o.state = TargetUp
	default:
		o.state = TargetSkipped
		o.quality = false // neither: LATENCY_/LOSS_ are not updated
	}
}

func durationMs(d time.Duration) int {
	ms := d / time.Millisecond
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(ms)
}

type indexedResult struct {
	i int
	r Result
}

// probePool runs the probes of one tracker's rounds on goroutines kept
// between rounds: a new goroutine per probe cost more than an ICMP probe
// itself (its stack grew to a probe's depth every time). It never holds
// more goroutines than the largest round had targets. Only the round in
// flight uses run; close is called when no round runs.
type probePool struct {
	jobs    chan probeJob
	workers int
	wg      sync.WaitGroup
}

type probeJob struct {
	ctx    context.Context
	pr     Prober
	i      int
	target string
	out    chan<- indexedResult
}

func newProbePool() *probePool { return &probePool{jobs: make(chan probeJob)} }

// run hands j to an idle worker, or starts one while fewer than limit
// exist, or else waits for one (a worker of the previous round that has
// not picked up work again yet).
func (p *probePool) run(j probeJob, limit int) {
	select {
	case p.jobs <- j:
		return
	default:
	}
	if p.workers < limit {
		p.workers++
		p.wg.Go(func() { p.work(j) })
		return
	}
	p.jobs <- j
}

func (p *probePool) work(j probeJob) {
	for ok := true; ok; j, ok = <-p.jobs {
		j.out <- indexedResult{j.i, j.pr.Probe(j.ctx, j.target)}
		j = probeJob{}
	}
}

// close stops the workers and waits for them.
func (p *probePool) close() {
	close(p.jobs)
	p.wg.Wait()
}

// runRound probes all targets at the same time (on pool) and fills out
// (one entry per target, in configuration order) exactly as legacy's
// sequential loop would have: targets after the `reliability`-th success
// are skipped and their probes cancelled; a probe interrupted because ctx
// was cancelled (ifup/ifdown) counts as failed. runRound returns after
// every probe has returned.
//
// A round that can no longer succeed (too many targets failed already) is
// not cut short: legacy probed every remaining target, and their answers
// decide their TRACK_ files and LOST (spec §5.8, CONTRACT). Silently lost
// requests all time out together anyway, since they left together.
func runRound(ctx context.Context, p *Params, pr Prober, out []outcome, pool *probePool) {
	n := len(out)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan indexedResult, n)
	for i := range out {
		out[i] = outcome{target: out[i].target}
		pool.run(probeJob{ctx: rctx, pr: pr, i: i, target: out[i].target, out: results}, n)
	}
	received := 0
	take := func() {
		ir := <-results
		received++
		o := &out[ir.i]
		o.result, o.ready = ir.r, true
		o.aborted = ctx.Err() != nil && errors.Is(ir.r.Err, context.Canceled)
	}
	hostUp := 0
	for next := 0; next < n; {
		o := &out[next]
		if hostUp >= p.Reliability {
			o.state = TargetSkipped
			next++
			continue
		}
		if !o.ready {
			take()
			continue
		}
		o.probed = true
		classify(p, o)
		if o.state == TargetUp {
			hostUp++
			if hostUp >= p.Reliability {
				cancel()
			}
		}
		next++
	}
	cancel()
	for received < n {
		take()
	}
}
