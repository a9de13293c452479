package track

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// newBenchTracker builds a tracker as Manager.Start does, without its
// goroutine, so a benchmark can run rounds one by one. Its uptime clock
// advances a second at every reading, so that TIME changes every round as
// it does in operation (rounds are at least a second apart).
func newBenchTracker(tb testing.TB, p Params, pr ProberFactory, dir string) *tracker {
	np, _ := p.Normalize("wan")
	var secs atomic.Int64
	uptime := func() time.Duration { return time.Duration(secs.Add(1)) * time.Second }
	m := NewManager(Config{Probers: pr, Dir: dir, Uptime: uptime})
	t := &tracker{
		name: "wan", log: slog.New(slog.DiscardHandler), mgr: m, files: newFileStore(dir, "wan"),
		params: np, bind: bindWAN, up: true, carrier: true,
		nudge: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	t.timer = time.NewTimer(time.Hour)
	t.timer.Stop()
	t.m = newMachine(t.name, &t.params, t.log, t)
	t.applyParams()
	t.setBinding(t.bind)
	t.m.firstConnect(0, t.bind.Device, true, true)
	tb.Cleanup(func() {
		t.wg.Wait()
		t.closePool()
		closeProber(t.prober)
		_ = t.files.removeAll()
	})
	return t
}

// benchDir is a directory for tracker files on tmpfs when the host has one
// at /dev/shm, as /var/run is on OpenWrt (a disk file system costs several
// times more per file written).
func benchDir(b *testing.B) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "mwan3d-track-bench-"); err == nil {
			b.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return b.TempDir()
}

// round runs one complete round: probes, evaluation, files, snapshot.
func (t *tracker) benchRound() {
	t.startRound()
	<-t.cur.done
	t.finishRound(false)
}

type instantProbers struct{}

func (instantProbers) NewProber(Params, Binding) (Prober, error) { return instantProber{}, nil }

type instantProber struct{}

func (instantProber) Probe(context.Context, string) Result { return result(1, 1, 3*time.Millisecond) }

// BenchmarkRoundOverhead is the tracker's own cost per round of the
// shipped wan (4 targets, reliability 2), probes excluded: goroutines per
// target, evaluation, state machine, tracker files (only changed values
// are written: TURN and TIME here) and the snapshot.
func BenchmarkRoundOverhead(b *testing.B) {
	p := DefaultParams("1.0.0.1", "1.1.1.1", "208.67.222.222", "208.67.220.220")
	p.Reliability = 2
	for _, files := range []bool{false, true} {
		name := "no-files"
		dir := ""
		if files {
			name, dir = "files", benchDir(b)
		}
		b.Run(name, func(b *testing.B) {
			t := newBenchTracker(b, p, instantProbers{}, dir)
			b.ReportAllocs()
			for b.Loop() {
				t.benchRound()
			}
		})
	}
}

func BenchmarkMachineRound(b *testing.B) {
	p := DefaultParams("a", "b", "c", "d")
	p.Reliability = 2
	rec := &sinkRecorder{files: map[string]string{}}
	m := newMachine("wan", &p, slog.New(slog.DiscardHandler), rec)
	m.firstConnect(0, "eth1", true, true)
	outs := []outcome{
		{target: "a", state: TargetUp, probed: true}, {target: "b", state: TargetUp, probed: true},
		{target: "c", state: TargetSkipped}, {target: "d", state: TargetSkipped},
	}
	b.ReportAllocs()
	for b.Loop() {
		m.round(1, outs)
	}
}
