package track

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// reply is what the fake network does with one probe of one target.
type reply struct {
	answered    int           // probes answered (of count); -1: all of them
	rtt         time.Duration // round-trip time of each answer (or ICMP error)
	err         error
	unreachable bool // the unanswered probes get an ICMP error after rtt
}

var (
	up   = reply{answered: -1}
	down = reply{answered: 0}
)

// script decides the fate of a probe of target started at `at` (virtual
// time since the start of the test) with binding b.
type script func(target string, at time.Duration, b Binding) reply

// fakeNet is a ProberFactory whose probers follow a script and take the
// time real probes would take: an answered probe returns after its RTT
// (count probes one second apart), a lost one after (count−1)·1 s +
// timeout, as ping does, or after (count−1)·1 s + RTT when ICMP errors
// come back.
type fakeNet struct {
	start time.Time
	run   script
	tl    *timeline
	fail  error // NewProber error
}

func (f *fakeNet) NewProber(p Params, b Binding) (Prober, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return &fakeProber{net: f, p: p, b: b}, nil
}

type fakeProber struct {
	net *fakeNet
	p   Params
	b   Binding
}

func (fp *fakeProber) Probe(ctx context.Context, target string) Result {
	at := time.Since(fp.net.start)
	fp.net.tl.add("probe %s %s/%s", target, fp.b.Device, fp.b.Source)
	r := fp.net.run(target, at, fp.b)
	n := fp.p.Count
	answered := r.answered
	if answered < 0 || answered > n {
		answered = n
	}
	d := time.Duration(n-1)*time.Second + fp.p.Timeout
	if answered == n || r.unreachable {
		d = time.Duration(n-1)*time.Second + r.rtt
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return Result{Sent: 1, Err: fmt.Errorf("fake probe: %w", ctx.Err())}
	case <-timer.C:
	}
	res := Result{Sent: n, Err: r.err}
	for range answered {
		res.AddReply(r.rtt)
	}
	if answered < n && res.Err == nil {
		res.Err = fmt.Errorf("fake: %d lost", n-answered)
	}
	return res
}

// timeline records what happened, stamped with virtual time. Lines of the
// same instant are sorted, since goroutines woken at the same instant run
// in any order.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	lines []stamped
}

type stamped struct {
	at time.Duration
	s  string
}

func (tl *timeline) add(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.lines = append(tl.lines, stamped{time.Since(tl.start), fmt.Sprintf(format, args...)})
}

func (tl *timeline) get() []string {
	tl.mu.Lock()
	lines := slices.Clone(tl.lines)
	tl.mu.Unlock()
	slices.SortStableFunc(lines, func(a, b stamped) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return strings.Compare(a.s, b.s)
	})
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("%v %s", l.at, l.s)
	}
	return out
}

// uptimeAtStart is the system uptime the harness pretends at virtual time 0.
const uptimeAtStart = 1000 * time.Second

// harness runs a Manager inside a synctest bubble with a fake network.
type harness struct {
	t     *testing.T
	m     *Manager
	net   *fakeNet
	tl    *timeline
	dir   string
	logs  *logRecorder
	done  chan struct{}
	start time.Time
}

func newHarness(t *testing.T, run script) *harness {
	start := time.Now()
	tl := &timeline{start: start}
	h := &harness{t: t, tl: tl, dir: t.TempDir(), start: start, done: make(chan struct{})}
	h.net = &fakeNet{start: start, run: run, tl: tl}
	h.logs = &logRecorder{}
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(t.Output(), nil), h.logs))
	h.m = NewManager(Config{
		Logger:  logger,
		Dir:     h.dir,
		Probers: h.net,
		Uptime:  func() time.Duration { return uptimeAtStart + time.Since(start) },
	})
	go func() {
		defer close(h.done)
		for ev := range h.m.Events() {
			first := ""
			if ev.FirstConnect {
				first = " first"
			}
			tl.add("event %s %s dev=%s%s", ev.Interface, ev.Action, ev.Device, first)
		}
	}()
	return h
}

// at sleeps until virtual time d since the start.
func (h *harness) at(d time.Duration) {
	if w := d - time.Since(h.start); w > 0 {
		time.Sleep(w)
	}
}

// close stops the manager and waits for the event reader.
func (h *harness) close() {
	h.m.Close()
	<-h.done
}

func (h *harness) file(iface, name string) string {
	b, err := os.ReadFile(filepath.Join(h.dir, iface, name))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimSuffix(string(b), "\n")
}

// logRecorder is a slog.Handler keeping the messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// diffLines reports the first difference between want and got.
func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("timeline line %d:\n got: %q\nwant: %q\nfull timeline:\n%s", i, g, w, strings.Join(got, "\n"))
			return
		}
	}
}

// cutAfter is a script where target(s) answer until `cut` and are lost
// from then on (until restore, if non-zero).
func cutBetween(cut, restore time.Duration) script {
	return func(_ string, at time.Duration, _ Binding) reply {
		if at >= cut && (restore == 0 || at < restore) {
			return down
		}
		return up
	}
}

// testLogger logs through the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
