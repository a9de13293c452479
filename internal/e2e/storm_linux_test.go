package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/ubus"
)

// flappingStorm: netifd takes wan down and up 200 times in 20 s. At the
// end the daemon's state (status, ip rules, routing tables, nft) is what
// it was before, and it holds no more goroutines or file descriptors than
// it did. wanb's traffic never notices.
func flappingStorm(t *testing.T, b *bed.Bed) {
	const cycles = 200
	const period = 100 * time.Millisecond // one down and one up
	tb := b.TB
	// One cycle first: what the daemon opens once, on the first ifdown or
	// ifup, is not a leak (the trackers keep their state files open).
	for _, op := range []func(context.Context, string) error{b.Netifd.Down, b.Netifd.Up} {
		if err := op(t.Context(), "wan"); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, b, "online", "wan", "wanb")
	waitPolicy(t, b, "ipv4", "balanced", "wan", "wanb")
	settledHooks(t, b)
	before := kernelState(t, b)
	res0 := restingDebug(t, b)
	s, err := tb.Stream(tb.LAN, testbed.StreamConfig{Family: testbed.IPv4, Port: portByPort, Interval: probeInterval})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	hooksBefore := len(b.Hooks())
	start := time.Now()
	for i := range 2 * cycles {
		op := b.Netifd.Down
		if i%2 == 1 {
			op = b.Netifd.Up
		}
		if err := op(ctx, "wan"); err != nil {
			t.Fatalf("cycle %d: %v", i/2, err)
		}
		// On a schedule, so that a late wake-up on a loaded machine is
		// made up for by the next.
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * period / 2)))
	}
	t.Logf("%d ifdown/ifup cycles of wan in %v", cycles, time.Since(start).Round(time.Millisecond))
	waitStatus(t, b, "online", "wan", "wanb")
	waitPolicy(t, b, "ipv4", "balanced", "wan", "wanb")
	streamRes := s.Stop()
	if streamRes.Received != streamRes.Sent || streamRes.SendErrors != 0 || streamRes.PerWAN[wanB] != streamRes.Sent {
		t.Errorf("wanb's stream during the storm: sent %d, answered %d (on wanb %d), send errors %d",
			streamRes.Sent, streamRes.Received, streamRes.PerWAN[wanB], streamRes.SendErrors)
	}
	after := waitNoLeak(t, b, res0)
	t.Logf("daemon before the storm: %+v; after: %+v; %d hook runs", res0, after, settledHooks(t, b)-hooksBefore)
	if got := kernelState(t, b); got != before {
		t.Errorf("state after the storm differs from before:\n--- before\n%s\n--- after\n%s", before, got)
	}
	expectOn(t, "after the storm", tcp(t, tb, tb.LAN, 40, testbed.IPv4, 0), 2, wanA, wanB)
}

// debugFigures are the daemon's own resources: what `ubus call mwan3
// debug` reports, and its file descriptors as /proc/<pid>/fd lists them
// from outside.
type debugFigures struct {
	Goroutines, FDs, HeapAlloc int64
	ProcFDs                    int
}

func readDebug(t testing.TB, b *bed.Bed) debugFigures {
	t.Helper()
	rep := call(t, b, "debug", nil)
	var d debugFigures
	d.Goroutines, _ = rep.GetInt("goroutines")
	d.FDs, _ = rep.GetInt("fds")
	d.HeapAlloc, _ = rep.GetInt("heap_alloc")
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", b.Pid()))
	if err != nil {
		t.Fatalf("the daemon's file descriptors: %v", err)
	}
	d.ProcFDs = len(fds)
	return d
}

// Leak margins over the resting figures: a leak of one per flap would be
// 200.
const (
	goroutineSlack = 4
	fdSlack        = 2
)

// restingDebug returns the highest of a few readings of the daemon's
// figures at rest: its probes, hooks and state files make them wander by
// a few.
func restingDebug(t testing.TB, b *bed.Bed) debugFigures {
	t.Helper()
	high := readDebug(t, b)
	for range 9 {
		time.Sleep(100 * time.Millisecond)
		d := readDebug(t, b)
		high.Goroutines, high.FDs, high.ProcFDs = max(high.Goroutines, d.Goroutines), max(high.FDs, d.FDs), max(high.ProcFDs, d.ProcFDs)
	}
	return high
}

// waitNoLeak waits until the daemon's figures are back within the slack
// of the resting ones, and reports a leak if they stay above for 30 s.
func waitNoLeak(t testing.TB, b *bed.Bed, rest debugFigures) debugFigures {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := readDebug(t, b)
		if d.Goroutines <= rest.Goroutines+goroutineSlack && d.FDs <= rest.FDs+fdSlack && d.ProcFDs <= rest.ProcFDs+fdSlack {
			return d
		}
		if time.Now().After(deadline) {
			t.Errorf("leak: 30 s after the storm the daemon has %+v, at rest before it had %+v", d, rest)
			return d
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// volatile matches what changes in a listing without a change of state:
// counters and the expiry of set elements.
var volatile = regexp.MustCompile(`packets \d+ bytes \d+|expires [0-9hms]+`)

// sortedBlocks sorts the members of an `nft list table` listing (sets,
// counters, chains), which nft prints in the order they were created: a
// chain the daemon removed and added again moves to the end.
func sortedBlocks(listing string) string {
	var blocks []string
	var cur strings.Builder
	for l := range strings.SplitSeq(listing, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		cur.WriteString(l + "\n")
		if l == "\t}" || !strings.HasPrefix(l, "\t") {
			blocks = append(blocks, cur.String())
			cur.Reset()
		}
	}
	blocks = append(blocks, cur.String())
	slices.Sort(blocks)
	return strings.Join(blocks, "")
}

// kernelState prints what the daemon keeps in the router namespace and
// what its status says of the interfaces.
func kernelState(t testing.TB, b *bed.Bed) string {
	t.Helper()
	var sb strings.Builder
	for _, fam := range []string{"-4", "-6"} {
		fmt.Fprintf(&sb, "ip %s rule:\n%s", fam, run(t, b, "ip", fam, "rule", "show"))
		for i := range b.TB.WANs {
			// A table without routes does not exist: the error is the state.
			out, err := b.TB.Router.Run(t.Context(), "ip", fam, "route", "show", "table", fmt.Sprint(i+1))
			if err != nil {
				out = "(none)\n"
			}
			fmt.Fprintf(&sb, "ip %s route table %d:\n%s", fam, i+1, out)
		}
	}
	sb.WriteString(sortedBlocks(volatile.ReplaceAllString(run(t, b, "nft", "list", "table", "inet", "mwan3"), "")))
	rep := call(t, b, "status", nil)
	ifs, _ := rep.GetTable("interfaces")
	for _, f := range ifs {
		i, _ := f.Value.(ubus.Table)
		st, _ := i.GetString("status")
		tr, _ := i.GetString("tracking")
		fmt.Fprintf(&sb, "interface %s: status %s tracking %s\n", f.Name, st, tr)
	}
	pols, _ := rep.GetTable("policies")
	fmt.Fprintf(&sb, "policies %s\n", pols)
	return sb.String()
}
