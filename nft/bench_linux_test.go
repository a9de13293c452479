//go:build linux

package nft

import (
	"testing"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

// BenchmarkApply measures applies in a namespace for each config size:
//   - cold: into a new namespace (table, chains, sets, counters created);
//   - change: the first interface toggles online/offline, so the policy and
//     sticky chains that depend on it are rewritten (what an event costs);
//   - same: the same plan again (nothing to rewrite).
func BenchmarkApply(b *testing.B) {
	for _, size := range benchSizes {
		in := size.in()
		on, err := Render(in)
		if err != nil {
			b.Fatal(err)
		}
		in.Interfaces[0].Online = !in.Interfaces[0].Online
		off, err := Render(in)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(size.name+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				a := NewApplier(WithNetNS(testbed.NewNS(b, "bench").NetNSFd()))
				b.StartTimer()
				if err := a.Apply(on); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/change", func(b *testing.B) {
			a := NewApplier(WithNetNS(testbed.NewNS(b, "bench").NetNSFd()))
			if err := a.Apply(on); err != nil {
				b.Fatal(err)
			}
			plans := []*Plan{off, on}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Apply(plans[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(size.name+"/same", func(b *testing.B) {
			a := NewApplier(WithNetNS(testbed.NewNS(b, "bench").NetNSFd()))
			if err := a.Apply(on); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Apply(on); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyLargeSet replaces a connected set of 100 000 prefixes by
// another one of the same size in each apply.
func BenchmarkApplyLargeSet(b *testing.B) {
	a := NewApplier(WithNetNS(testbed.NewNS(b, "bench").NetNSFd()))
	var plans []*Plan
	for _, n := range []int{100000, 100001} {
		in := dualStackInput()
		in.Connected = largeConnected(n)[n-100000:]
		p, err := Render(in)
		if err != nil {
			b.Fatal(err)
		}
		plans = append(plans, p)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Apply(plans[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
