package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// probeInterval is the interval of the probe streams that time failovers.
const probeInterval = 10 * time.Millisecond

// failover describes a failover scenario: policy has its metric-1 members
// on WAN primary and its metric-2 members on WAN backup, for each family;
// the rules send TCP and UDP to port to it.
type failover struct {
	primary, backup int
	policy          string
	port            int
	families        []testbed.Family
}

// iface is the mwan3 interface of WAN i for a family; fam names the family
// as the status reply does.
func iface(tb *testbed.Testbed, i int, f testbed.Family) (name, fam string) {
	if f == testbed.IPv6 {
		return tb.WANs[i].Name6, "ipv6"
	}
	return tb.WANs[i].Name, "ipv4"
}

// names lists the interfaces of WAN i for the families.
func (f failover) names(tb *testbed.Testbed, i int) []string {
	var out []string
	for _, fam := range f.families {
		n, _ := iface(tb, i, fam)
		out = append(out, n)
	}
	return out
}

// waitOn waits until the policy's only active members are on WAN i, in
// every family.
func (f failover) waitOn(t testing.TB, b *bed.Bed, i int) {
	t.Helper()
	for _, fam := range f.families {
		n, fs := iface(b.TB, i, fam)
		waitPolicy(t, b, fs, f.policy, n)
	}
}

// expectOn checks that new TCP connections of every family take WAN i.
func (f failover) expectOn(t testing.TB, b *bed.Bed, what string, i int) {
	t.Helper()
	for _, fam := range f.families {
		expectOn(t, fam.String()+" "+what, tcp(t, b.TB, b.TB.LAN, 20, fam, f.port), len(b.TB.WANs), i)
	}
}

// streams starts a probe stream of new flows per family.
func (f failover) streams(t testing.TB, b *bed.Bed) []*timedStream {
	t.Helper()
	var out []*timedStream
	for _, fam := range f.families {
		out = append(out, startStream(t, b.TB, b.TB.LAN, fam, f.port))
	}
	return out
}

// timedStream is a probe stream of new flows whose switches between WANs
// can be placed on the wall clock.
type timedStream struct {
	family testbed.Family
	s      *testbed.Stream
	start  time.Time // just before the first probe
}

func startStream(t testing.TB, tb *testbed.Testbed, ns *testbed.NS, family testbed.Family, port int) *timedStream {
	t.Helper()
	start := time.Now()
	s, err := tb.Stream(ns, testbed.StreamConfig{Family: family, Port: port, Interval: probeInterval, NewFlows: true})
	if err != nil {
		t.Fatal(err)
	}
	return &timedStream{family: family, s: s, start: start}
}

// maxExcursion bounds how long a stream may seem to leave a WAN it has
// moved to without that counting (see movedTo).
const maxExcursion = 5 * probeInterval

// movedTo returns when, after at and before until, the stream moved to
// WAN to for good, less at. A new socket that happens to get the source
// port of an earlier probe whose conntrack entry is still there keeps
// that entry's mark, so a single probe may take the WAN of the earlier
// one (about 1 % of the probes after a move). Such an excursion — a
// switch away from to and back within maxExcursion, or away as the last
// switch before until — does not undo the move; the callers check the
// final placement with new TCP connections.
func (ts *timedStream) movedTo(res testbed.StreamResult, to int, at, until time.Time) (time.Duration, bool) {
	var sws []testbed.Switch
	for _, sw := range res.Switches {
		if when := ts.start.Add(sw.At); when.After(at) && when.Before(until) {
			sws = append(sws, sw)
		}
	}
	var moved time.Time
	for i, sw := range sws {
		switch {
		case sw.To == to && moved.IsZero():
			moved = ts.start.Add(sw.At)
		case sw.From == to && !moved.IsZero():
			last := i == len(sws)-1
			if !last && (sws[i+1].To != to || sws[i+1].At-sw.At > maxExcursion) {
				moved = time.Time{}
			}
		}
	}
	if moved.IsZero() {
		return 0, false
	}
	return moved.Sub(at), true
}

// failoverTracker: the primary's upstream goes silent with its link up;
// only its trackers can tell. New connections move to the backup once
// the primary's interfaces are offline and come back once they are online
// again; mwan3.user sees the four tracker actions in order.
func failoverTracker(t *testing.T, b *bed.Bed, f failover) {
	tb := b.TB
	f.expectOn(t, b, "before the cut", f.primary)
	hooksBefore := settledHooks(t, b)
	streams := f.streams(t, b)
	time.Sleep(300 * time.Millisecond)

	cut := time.Now()
	if err := tb.CutUpstream(f.primary); err != nil {
		t.Fatal(err)
	}
	restoreAtEnd(t, b, f.primary, f.names(tb, f.primary)...)
	waitStatus(t, b, "offline", f.names(tb, f.primary)...)
	offline := time.Since(cut)
	f.waitOn(t, b, f.backup)
	f.expectOn(t, b, "while the primary is offline", f.backup)

	restored := time.Now()
	if err := tb.Restore(f.primary); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, "online", f.names(tb, f.primary)...)
	online := time.Since(restored)
	f.waitOn(t, b, f.primary)
	time.Sleep(300 * time.Millisecond)
	end := time.Now()
	f.expectOn(t, b, "after the restore", f.primary)

	t.Logf("tracker failover (interval 1, timeout 1, down 2, up 2): all %v offline %v after the cut, online %v after the restore",
		f.names(tb, f.primary), offline.Round(time.Millisecond), online.Round(time.Millisecond))
	for _, ts := range streams {
		res := ts.s.Stop()
		over, okOver := ts.movedTo(res, f.backup, cut, restored)
		back, okBack := ts.movedTo(res, f.primary, restored, end)
		if !okOver || !okBack {
			t.Errorf("%v stream did not move to the backup after the cut and back after the restore: switches %+v", ts.family, res.Switches)
		}
		t.Logf("%v new flows: on the backup for good %v after the cut, back %v after the restore (probes sent %d, answered %d, per WAN %v)",
			ts.family, over.Round(time.Millisecond), back.Round(time.Millisecond), res.Sent, res.Received, res.PerWAN)
	}

	want := []string{"disconnecting", "disconnected", "connecting", "connected"}
	for _, name := range f.names(tb, f.primary) {
		if err := b.WaitHooks(t.Context(), "mwan3.user ACTION=connected DEVICE="+tb.WANs[f.primary].Dev+" INTERFACE="+name); err != nil {
			t.Fatal(err)
		}
		if got := hookActions(b.Hooks(), hooksBefore, name); !slices.Equal(got, want) {
			t.Errorf("mwan3.user saw %q for %s, want %q", got, name, want)
		}
	}
}

// failoverCarrier: the primary's link loses its carrier. The daemon takes
// its interfaces offline at once; the time from the cut to new flows on
// the backup is measured and printed, not asserted.
func failoverCarrier(t *testing.T, b *bed.Bed, f failover) {
	tb := b.TB
	streams := f.streams(t, b)
	time.Sleep(300 * time.Millisecond)
	cut := time.Now()
	if err := tb.CutCarrier(f.primary); err != nil {
		t.Fatal(err)
	}
	restoreAtEnd(t, b, f.primary, f.names(tb, f.primary)...)
	waitStatus(t, b, "offline", f.names(tb, f.primary)...)
	offline := time.Since(cut)
	f.waitOn(t, b, f.backup)
	f.expectOn(t, b, "while the primary has no carrier", f.backup)
	time.Sleep(100 * time.Millisecond)
	end := time.Now()
	t.Logf("carrier failover: %v offline %v after the cut", f.names(tb, f.primary), offline.Round(time.Millisecond))
	for _, ts := range streams {
		res := ts.s.Stop()
		over, ok := ts.movedTo(res, f.backup, cut, end)
		if !ok {
			t.Errorf("%v stream did not move to the backup after the carrier loss: switches %+v", ts.family, res.Switches)
		}
		t.Logf("%v new flows: on the backup for good %v after the cut (longest gap %v)", ts.family, over.Round(time.Millisecond), res.LongestGap.Round(time.Millisecond))
	}

	if err := tb.Restore(f.primary); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, "online", f.names(tb, f.primary)...)
	f.waitOn(t, b, f.primary)
	f.expectOn(t, b, "after the carrier is back", f.primary)
}

// TestMovedTo checks the reading of stream switches (no root needed).
func TestMovedTo(t *testing.T) {
	start := time.Unix(1000, 0)
	at, until := start.Add(time.Second), start.Add(10*time.Second)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	sw := func(from, to, atMS int) testbed.Switch { return testbed.Switch{From: from, To: to, At: ms(atMS)} }
	tests := []struct {
		name     string
		switches []testbed.Switch
		want     time.Duration
		ok       bool
	}{
		{"clean move", []testbed.Switch{sw(0, 1, 4000)}, ms(3000), true},
		{"no move", nil, 0, false},
		{"move before at only", []testbed.Switch{sw(0, 1, 500)}, 0, false},
		{"stale probe before the move", []testbed.Switch{sw(0, 1, 2000), sw(1, 0, 2010), sw(0, 1, 4000)}, ms(3000), true},
		{"excursion after the move", []testbed.Switch{sw(0, 1, 4000), sw(1, 0, 6000), sw(0, 1, 6010)}, ms(3000), true},
		{"excursion as the last switch", []testbed.Switch{sw(0, 1, 4000), sw(1, 0, 9990)}, ms(3000), true},
		{"moved back for a while", []testbed.Switch{sw(0, 1, 4000), sw(1, 0, 5000), sw(0, 1, 7000)}, ms(6000), true},
		{"switch after until ignored", []testbed.Switch{sw(0, 1, 4000), sw(1, 0, 11000)}, ms(3000), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := &timedStream{start: start}
			got, ok := ts.movedTo(testbed.StreamResult{Switches: tc.switches}, 1, at, until)
			if got != tc.want || ok != tc.ok {
				t.Errorf("movedTo = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
