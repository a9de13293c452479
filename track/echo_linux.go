//go:build linux

package track

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// echoer is a datagram probe: requests go out one per probeSpacing and
// replies come back on the same socket.
type echoer interface {
	// send sends request seq.
	send(seq int) error
	// recv reads until deadline and returns the sequence number a reply
	// answers, -1 for "the newest request still waiting" (protocols
	// without sequence numbers), or errIgnore for a datagram that is not
	// a reply (garbage, another host, another probe); with the time the
	// reply arrived.
	recv(deadline time.Time) (int, time.Time, error)
}

var errIgnore = errors.New("not a reply")

// requestFailed is what echoer.recv returns (unwrapped) when request seq
// can no longer be answered (an ICMP error about it came back): the probe
// stops waiting for it.
type requestFailed struct {
	seq int
	err error
}

func (e *requestFailed) Error() string { return e.err.Error() }
func (e *requestFailed) Unwrap() error { return e.err }

// probeOp names a probe in its errors ("ping 192.0.2.1", "nping-udp
// 192.0.2.1:40125"); the text is only built when a probe fails.
type probeOp struct {
	method string
	dst    netip.AddrPort // the port is shown unless it is 0
}

func (o probeOp) String() string {
	if o.dst.Port() == 0 {
		return o.method + " " + o.dst.Addr().String()
	}
	return o.method + " " + o.dst.String()
}

// echoSpec says when an echo probe is over.
type echoSpec struct {
	count   int           // requests (legacy -c)
	timeout time.Duration // how long a reply may take (ping -W)
	// untilReplies is arping's -w mode: keep sending one request per
	// second until count replies arrived or timeout has passed since the
	// start.
	untilReplies bool
}

// echoLoop runs an echo probe: request i leaves at start+i·probeSpacing and
// its reply counts if it arrives within timeout of it (ping: the probe
// lasts at most (count−1)·1 s + timeout). In untilReplies mode the whole
// probe lasts at most timeout.
func echoLoop(ctx context.Context, op probeOp, e echoer, spec echoSpec) Result {
	var res Result
	start := time.Now()
	end := time.Time{} // untilReplies: overall deadline
	if spec.untilReplies {
		end = start.Add(spec.timeout)
	}
	var sent []time.Time
	var done []bool // answered, or its send failed (iputils counts errors as done too)
	var lastErr error
	for {
		now := time.Now()
		if ctx.Err() != nil {
			res.Err = fmt.Errorf("%s: %w", op, ctx.Err())
			return res
		}
		if spec.untilReplies && res.Received >= spec.count {
			break
		}
		n := len(sent)
		wantMore := n < spec.count
		if spec.untilReplies {
			wantMore = res.Received < spec.count && now.Before(end)
		}
		nextSend := start.Add(time.Duration(n) * probeSpacing)
		if wantMore && !now.Before(nextSend) {
			sent = append(sent, now)
			res.Sent++
			err := e.send(n)
			if err != nil {
				lastErr = err
			}
			done = append(done, err != nil)
			continue
		}
		// The latest moment an outstanding reply may still arrive.
		var wait time.Time
		for i, t := range sent {
			if !done[i] {
				exp := t.Add(spec.timeout)
				if spec.untilReplies {
					exp = end
				}
				if exp.After(wait) {
					wait = exp
				}
			}
		}
		if wantMore && (wait.IsZero() || nextSend.Before(wait)) {
			wait = nextSend
		}
		if wait.IsZero() || !now.Before(wait) {
			if !wantMore {
				break
			}
			continue
		}
		seq, at, err := e.recv(wait)
		if failed, ok := err.(*requestFailed); ok {
			if failed.seq >= 0 && failed.seq < len(sent) && !done[failed.seq] {
				done[failed.seq] = true
				lastErr = failed.err
			}
			continue
		}
		switch {
		case errors.Is(err, errIgnore):
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case err != nil:
			if ctx.Err() != nil {
				continue
			}
			lastErr = err
			// A broken socket (device gone) cannot receive anything more:
			// the outstanding requests are lost.
			if !spec.untilReplies && len(sent) >= spec.count {
				res.Err = fmt.Errorf("%s: %w", op, lastErr)
				return res
			}
			sleepUntil(ctx, wait)
			continue
		}
		if seq < 0 {
			seq = newestWaiting(sent, done, at, spec, end)
		}
		if seq < 0 || seq >= len(sent) || done[seq] {
			continue
		}
		exp := sent[seq].Add(spec.timeout)
		if spec.untilReplies {
			exp = end
		}
		if at.After(exp) {
			continue
		}
		done[seq] = true
		res.AddReply(at.Sub(sent[seq]))
	}
	if res.Received < res.Sent {
		if lastErr != nil {
			res.Err = fmt.Errorf("%s: %w", op, lastErr)
		} else {
			res.Err = fmt.Errorf("%s: %d of %d probes unanswered", op, res.Sent-res.Received, res.Sent)
		}
	}
	return res
}

// newestWaiting picks the request a reply without sequence number answers:
// the latest one still waiting (requests are a second apart, so an earlier
// one still waiting was most likely lost).
func newestWaiting(sent []time.Time, done []bool, at time.Time, spec echoSpec, end time.Time) int {
	for i := len(sent) - 1; i >= 0; i-- {
		t := sent[i]
		exp := t.Add(spec.timeout)
		if spec.untilReplies {
			exp = end
		}
		if !done[i] && !at.After(exp) {
			return i
		}
	}
	return -1
}

// sleepUntil waits until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// attempts runs count sequential request/response probes (TCP connect,
// HTTP, DNS) one probeSpacing apart, each limited to timeout.
func attempts(ctx context.Context, op string, count int, timeout time.Duration,
	try func(ctx context.Context) error) Result {
	var res Result
	start := time.Now()
	for i := range count {
		sleepUntil(ctx, start.Add(time.Duration(i)*probeSpacing))
		if ctx.Err() != nil {
			res.Err = fmt.Errorf("%s: %w", op, ctx.Err())
			return res
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		t0 := time.Now()
		err := try(actx)
		rtt := time.Since(t0)
		cancel()
		res.Sent++
		if err == nil {
			res.AddReply(rtt)
			continue
		}
		if ctx.Err() != nil {
			res.Err = fmt.Errorf("%s: %w", op, ctx.Err())
			return res
		}
		res.Err = fmt.Errorf("%s: %w", op, err)
	}
	return res
}
