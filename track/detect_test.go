package track

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// detection runs the shipped `wan` (4 targets, reliability 2) with p in
// virtual time, cuts every target at `cut` and returns when `disconnected`
// fired (-1 if it did not within 10 minutes).
func detection(t *testing.T, p Params, cut time.Duration) time.Duration {
	var got time.Duration = -1
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		tl := &timeline{start: start}
		m := NewManager(Config{Probers: &fakeNet{start: start, run: cutBetween(cut, 0), tl: tl}})
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

// TestDetectionTimes derives the detection times from virtual-time runs:
// with the targets of a round probed at the same time a failed round lasts
// `timeout` (4 s) instead of 4 × 4 s, so D failed rounds take
// D·timeout + (D−1)·failure_interval after the first failing round starts,
// plus the phase of the cut within the pause (0 … interval).
func TestDetectionTimes(t *testing.T) {
	shipped := DefaultParams("1.0.0.1", "1.1.1.1", "208.67.222.222", "208.67.220.220")
	shipped.Reliability = 2
	fast := shipped
	fast.Interval, fast.FailureInterval, fast.RecoveryInterval = time.Second, time.Second, time.Second
	fast.Down = 3
	tests := []struct {
		name     string
		p        Params
		interval time.Duration
		best     time.Duration // cut just before a round starts
		legacy   time.Duration // same rounds, targets one after the other
	}{
		{"defaults", shipped, 10 * time.Second, 5*4*time.Second + 4*10*time.Second, 5*16*time.Second + 4*10*time.Second},
		{"interval 1, down 3", fast, time.Second, 3*4*time.Second + 2*time.Second, 3*16*time.Second + 2*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen []time.Duration
			// Rounds start at 0, interval, 2·interval … (answers take no time).
			for _, phase := range []time.Duration{0, time.Millisecond, tc.interval / 2, tc.interval - time.Millisecond} {
				d := detection(t, tc.p, 2*tc.interval+phase)
				seen = append(seen, d)
			}
			if seen[0] != tc.best {
				t.Errorf("cut as a round starts: disconnected after %v, want %v", seen[0], tc.best)
			}
			worst := slices.Max(seen)
			if worst >= tc.best+tc.interval {
				t.Errorf("worst detection %v, want below %v", worst, tc.best+tc.interval)
			}
			t.Logf("%s: cut → disconnected %v … %v depending on the phase of the cut (%s); legacy, same rounds: %v … %v",
				tc.name, tc.best, worst, fmt.Sprint(seen), tc.legacy, tc.legacy+tc.interval)
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
