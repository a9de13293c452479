//go:build linux

package track

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRawSockets skips a benchmark that needs raw ICMP sockets.
func requireRawSockets(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for raw ICMP sockets")
	}
}

// loopbackBinding binds probes to the host's loopback: the only traffic
// these benchmarks make is ICMP to 127.0.0.x.
var loopbackBinding = Binding{Device: "lo", Source: netip.MustParseAddr("127.0.0.1")}

// BenchmarkRoundICMP is one real round of the shipped wan's shape (4
// targets, reliability 2, ping) on loopback: sockets, ICMP, evaluation,
// files (TURN and TIME change every round, on tmpfs).
func BenchmarkRoundICMP(b *testing.B) {
	requireRawSockets(b)
	p := DefaultParams("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	p.Reliability = 2
	t := newBenchTracker(b, p, Native{}, benchDir(b))
	t.setBinding(loopbackBinding)
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	for b.Loop() {
		t.benchRound()
	}
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	b.ReportMetric(float64(cpuTime(ru1)-cpuTime(ru0))/float64(b.N)/1e3, "cpu-µs/round")
	if st := t.targets[0].State; st != TargetUp {
		b.Fatalf("target state %s", st)
	}
}

// BenchmarkProbeICMP is one ping of one target on loopback.
func BenchmarkProbeICMP(b *testing.B) {
	requireRawSockets(b)
	p, _ := DefaultParams().Normalize("lo")
	pr, err := Native{}.NewProber(p, loopbackBinding)
	if err != nil {
		b.Fatal(err)
	}
	defer closeProber(pr)
	b.ReportAllocs()
	for b.Loop() {
		if r := pr.Probe(context.Background(), "127.0.0.1"); r.Received != 1 {
			b.Fatal(r.Err)
		}
	}
}

func cpuTime(ru unix.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkManager8x4 runs 8 trackers of 4 targets probing every second
// (real ICMP on loopback) and reports, per second of operation, the CPU
// used, and the goroutines and heap the trackers hold.
func BenchmarkManager8x4(b *testing.B) {
	requireRawSockets(b)
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	m := NewManager(Config{Dir: benchDir(b)})
	p := DefaultParams("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	p.Reliability = 2
	p.Interval, p.FailureInterval, p.RecoveryInterval = time.Second, time.Second, time.Second
	for i := range 8 {
		if err := m.Start(fmt.Sprintf("wan%d", i), p, loopbackBinding, true); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		for range m.Events() {
		}
	}()
	time.Sleep(1500 * time.Millisecond) // first rounds done
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	var goroutines int
	for b.Loop() {
		time.Sleep(time.Second)
		goroutines = max(goroutines, runtime.NumGoroutine()-g0)
	}
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(cpuTime(ru1)-cpuTime(ru0))/float64(b.N)/1e6, "cpu-ms/s")
	b.ReportMetric(float64(goroutines), "goroutines")
	b.ReportMetric(float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/1024, "heap-KiB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/1024, "alloc-KiB/s")
	for i := range 8 {
		if st, _ := m.Status(fmt.Sprintf("wan%d", i)); st.Status != StatusOnline {
			b.Errorf("wan%d: %s", i, st.Status)
		}
	}
	m.Close()
}
