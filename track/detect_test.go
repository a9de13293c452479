package track

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// detection runs the shipped `wan` (4 targets, reliability 2) with p in
// virtual time; from `cut` on every probe gets `lost` (see upstreamCut); it
// returns when `disconnected` fired (-1 if it did not within 10 minutes).
func detection(t *testing.T, p Params, cut time.Duration, lost reply) time.Duration {
	var got time.Duration = -1
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		tl := &timeline{start: start}
		run := func(_ string, at time.Duration, _ Binding) reply {
			if at >= cut {
				return lost
			}
			return up
		}
		m := NewManager(Config{Probers: &fakeNet{start: start, run: run, tl: tl}})
		mustOK(t, m.Start("wan", p, bindWAN, true))
		timeout := time.After(10 * time.Minute)
	loop:
		for {
			select {
			case ev := <-m.Events():
				if ev.Action == ActionDisconnected {
					got = time.Since(start) - cut
					break loop
				}
			case <-timeout:
				break loop
			}
		}
		m.Close()
	})
	return got
}

// TestDetectionTimes measures in virtual time how long the shipped `wan`
// (4 targets, reliability 2, timeout 4) takes from an upstream cut to
// `disconnected`, over cut phases spread across the pause between rounds.
//
// Where the time goes (spec §5.4, §5.5): the cut is only seen by the first
// round that starts after it, 0 … interval later (the phase). That round
// and the next down−1 ones fail. A failed round lasts `timeout` when the
// requests are silently lost: the targets are probed at the same time and
// each may still answer until its timeout, so the failure is not certain
// earlier. When a router answers with ICMP errors (unreachable), the round
// fails as soon as they are back. After each failed round but the last
// comes the pause, failure_interval, which legacy counts from the end of
// the round (§5.5 "Next pause", CONTRACT). So
//
//	cut → disconnected = phase + down·(failed round) + (down−1)·failure_interval
//
// defaults, silent: phase + 5·4 s + 4·10 s = 60 … 70 s (legacy probed the
// targets one after the other: phase + 5·16 s + 4·10 s = 120 … 130 s);
// interval 1, down 3: phase + 3·4 s + 2·1 s = 14 … 15 s (legacy 50 … 51 s);
// defaults, unreachable answered in 20 ms: phase + 5·20 ms + 4·10 s.
func TestDetectionTimes(t *testing.T) {
	shipped := DefaultParams("1.0.0.1", "1.1.1.1", "208.67.222.222", "208.67.220.220")
	shipped.Reliability = 2
	fast := shipped
	fast.Interval, fast.FailureInterval, fast.RecoveryInterval = time.Second, time.Second, time.Second
	fast.Down = 3
	unreachable := reply{rtt: 20 * time.Millisecond, unreachable: true}
	tests := []struct {
		name     string
		p        Params
		lost     reply
		interval time.Duration
		best     time.Duration // cut just as a round starts
		legacy   time.Duration // same rounds, targets one after the other, each waiting for its timeout (busybox ping ignores ICMP errors)
	}{
		{"defaults", shipped, down, 10 * time.Second, 5*4*time.Second + 4*10*time.Second, 5*16*time.Second + 4*10*time.Second},
		{"interval 1, down 3", fast, down, time.Second, 3*4*time.Second + 2*time.Second, 3*16*time.Second + 2*time.Second},
		{"defaults, unreachable", shipped, unreachable, 10 * time.Second, 5*20*time.Millisecond + 4*10*time.Second, 5*16*time.Second + 4*10*time.Second},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Rounds start at 0, interval, 2·interval … (answers take no
			// time); the cut falls `phase` after the round at 2·interval.
			phases := []time.Duration{0, time.Millisecond, tc.interval / 2, tc.interval - time.Millisecond}
			rng := rand.New(rand.NewPCG(6, uint64(i)))
			for range 40 {
				phases = append(phases, time.Duration(rng.Int64N(int64(tc.interval))))
			}
			var seen []time.Duration
			for _, phase := range phases {
				d := detection(t, tc.p, 2*tc.interval+phase, tc.lost)
				want := tc.best + (tc.interval-phase)%tc.interval
				if d != want {
					t.Errorf("cut %v after a round started: disconnected after %v, want %v", phase, d, want)
				}
				seen = append(seen, d)
			}
			slices.Sort(seen)
			t.Logf("%s: cut → disconnected over %d cut phases: min %v, median %v, max %v (legacy, same rounds: %v … %v)",
				tc.name, len(seen), seen[0], seen[len(seen)/2], seen[len(seen)-1], tc.legacy, tc.legacy+tc.interval)
		})
	}
	t.Run("carrier loss", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, cutBetween(time.Hour, 0))
			mustOK(t, h.m.Start("wan", shipped, bindWAN, true))
			h.at(25 * time.Second)
			synctest.Wait()
			cut := time.Since(h.start)
			h.m.Carrier("eth1", false)
			synctest.Wait()
			h.close()
			want := fmt.Sprintf("%v event wan disconnected dev=eth1", cut)
			if !slices.Contains(h.tl.get(), want) {
				t.Errorf("no %q in %q", want, h.tl.get())
			}
			t.Logf("carrier loss → disconnected: 0 s of virtual time (no round needed)")
		})
	})
}
