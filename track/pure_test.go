package track

import (
	"context"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(p *Params)
		check  func(t *testing.T, p Params)
		warn   []string // substrings, in order
		nowarn bool
	}{
		{name: "defaults are accepted as is", nowarn: true, check: func(t *testing.T, p Params) {
			if !equalParams(p, DefaultParams("1.1.1.1")) {
				t.Errorf("defaults changed: %+v", p)
			}
		}},
		{
			name: "unknown method falls back to ping",
			mod:  func(p *Params) { p.Method = "fping" },
			warn: []string{"Unsupported tracking method: fping", "Using ping to track interface wan availability"},
			check: func(t *testing.T, p Params) {
				if p.Method != "ping" {
					t.Errorf("method %s", p.Method)
				}
			},
		},
		{
			name: "arping with IPv6 falls back to ping",
			mod:  func(p *Params) { p.Method = "arping"; p.Family = IPv6; p.Targets = []string{"2001:db8::1"} },
			warn: []string{"arping does not support IPv6", "Using ping to track interface wan availability"},
			check: func(t *testing.T, p Params) {
				if p.Method != "ping" {
					t.Errorf("method %s", p.Method)
				}
			},
		},
		{
			name: "check_quality is ignored for nping",
			mod:  func(p *Params) { p.Method = "nping-tcp"; p.CheckQuality = true },
			warn: []string{"check_quality is only supported by the ping and httping track methods"},
			check: func(t *testing.T, p Params) {
				if p.CheckQuality || p.Method != "nping-tcp" {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "zero and negative values are raised",
			mod: func(p *Params) {
				p.Count, p.Down, p.Up, p.Reliability = 0, -1, 0, 0
				p.Timeout, p.Interval, p.FailureInterval, p.RecoveryInterval = 0, 0, -time.Second, 0 // recovery: unset
				p.Size, p.MaxTTL = 70000, 0
				p.InitialState = "bogus"
			},
			warn: []string{"count 0", "down -1", "up 0", "reliability 0", "timeout 0s", "interval 0s",
				"failure_interval -1s", "size 70000", "max_ttl 0", `initial_state "bogus"`},
			check: func(t *testing.T, p Params) {
				if p.Count != 1 || p.Down != 1 || p.Up != 1 || p.Reliability != 1 || p.Timeout != time.Second ||
					p.Interval != time.Second || p.FailureInterval != time.Second || p.RecoveryInterval != time.Second ||
					p.Size != MaxSize || p.MaxTTL != 1 || p.InitialState != StatusOnline {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "reliability above the targets is kept with a warning",
			mod:  func(p *Params) { p.Reliability = 3 },
			warn: []string{"reliability 3 of interface wan exceeds its 1 track_ip targets"},
			check: func(t *testing.T, p Params) {
				if p.Reliability != 3 {
					t.Errorf("reliability %d", p.Reliability)
				}
			},
		},
		{
			name: "host names are fine; other-family literals and garbage are warned about",
			mod:  func(p *Params) { p.Targets = []string{"dns.example", "2001:db8::1", "a b", "::ffff:1.2.3.4"} },
			warn: []string{`track_ip "2001:db8::1" of interface wan: address is not ipv4`, `track_ip "a b"`},
		},
		{
			name: "too many targets are cut",
			mod: func(p *Params) {
				p.Targets = nil
				for i := range 200 {
					p.Targets = append(p.Targets, "10.0.0."+string(rune('0'+i%10)))
				}
			},
			warn:  []string{"has 200 track_ip targets; only the first 95 are used"},
			check: func(t *testing.T, p Params) { _ = p },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams("1.1.1.1")
			if tc.mod != nil {
				tc.mod(&p)
			}
			orig := slices.Clone(p.Targets)
			got, warn := p.Normalize("wan")
			if !slices.Equal(p.Targets, orig) {
				t.Error("Normalize modified its input")
			}
			if tc.nowarn && len(warn) > 0 {
				t.Errorf("unexpected warnings %q", warn)
			}
			i := 0
			for _, w := range warn {
				if i < len(tc.warn) && strings.Contains(w, tc.warn[i]) {
					i++
				}
			}
			if i < len(tc.warn) {
				t.Errorf("warning %q missing in %q", tc.warn[i], warn)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func result(sent, received int, rtt time.Duration) Result {
	r := Result{Sent: sent}
	for range received {
		r.AddReply(rtt)
	}
	return r
}

func TestClassify(t *testing.T) {
	q := DefaultParams()
	q.CheckQuality = true
	tests := []struct {
		name    string
		method  Method
		quality bool
		res     Result
		aborted bool
		state   TargetState
		lat     int
		loss    int
	}{
		{"ping: one reply of three is success", MethodPing, false, result(3, 1, time.Millisecond), false, TargetUp, 0, 0},
		{"ping: no reply", MethodPing, false, result(3, 0, 0), false, TargetDown, 0, 0},
		{"ping: aborted probe fails", MethodPing, false, result(3, 3, 0), true, TargetDown, 0, 0},
		{"nping: one lost of three fails", MethodNpingTCP, false, result(3, 2, 0), false, TargetDown, 0, 0},
		{"nping: all answered", MethodNpingUDP, false, result(3, 3, 0), false, TargetUp, 0, 0},
		{"nping: nothing sent fails", MethodNpingICMP, false, Result{}, false, TargetDown, 0, 0},
		{"nslookup: answer", MethodNslookup, false, result(1, 1, 0), false, TargetUp, 0, 0},
		{"quality: good", MethodPing, true, result(10, 10, 499*time.Millisecond), false, TargetUp, 499, 0},
		{"quality: latency = recovery is up", MethodPing, true, result(10, 10, 500*time.Millisecond), false, TargetUp, 500, 0},
		{"quality: between thresholds", MethodPing, true, result(10, 10, 501*time.Millisecond), false, TargetSkipped, 501, 0},
		{"quality: latency = failure is down", MethodPing, true, result(1, 1, time.Second), false, TargetDown, 1000, 0},
		{"quality: 1 of 3 lost is 33 %", MethodPing, true, result(3, 2, time.Millisecond), false, TargetSkipped, 1, 33},
		{"quality: loss = recovery is up", MethodPing, true, result(10, 9, time.Millisecond), false, TargetUp, 1, 10},
		{"quality: loss = failure is down", MethodHTTPing, true, result(5, 3, time.Millisecond), false, TargetDown, 1, 40},
		{"quality: total loss", MethodPing, true, result(5, 0, 0), false, TargetDown, lostLatency, 100},
		{"quality: aborted", MethodPing, true, result(5, 5, time.Millisecond), true, TargetDown, lostLatency, 100},
		{"quality: sub-millisecond latency rounds down", MethodPing, true, result(2, 2, 900*time.Microsecond), false, TargetUp, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			p.Method = string(tc.method)
			p.CheckQuality = tc.quality
			o := outcome{result: tc.res, aborted: tc.aborted, ready: true, probed: true}
			classify(&p, &o)
			if o.state != tc.state {
				t.Errorf("state %s, want %s", o.state, tc.state)
			}
			if o.quality != (tc.quality && tc.state != TargetSkipped) {
				t.Errorf("quality files %v", o.quality)
			}
			if tc.quality && (o.latency != tc.lat || o.loss != tc.loss) {
				t.Errorf("latency %d loss %d, want %d %d", o.latency, o.loss, tc.lat, tc.loss)
			}
		})
	}
}

// TestRunRoundMatchesSequential is a differential test: the concurrent
// round must give exactly what legacy's sequential loop gives, for random
// targets, results, delays and reliability.
func TestRunRoundMatchesSequential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		pool := newProbePool() // shared by all rounds, as a tracker's
		defer pool.close()
		for iter := range 500 {
			n := 1 + rng.IntN(6)
			p := DefaultParams()
			p.Reliability = 1 + rng.IntN(n+1)
			p.CheckQuality = rng.IntN(2) == 0
			p.Count = 1 + rng.IntN(3)
			p.Targets = nil
			results := map[string]Result{}
			delays := map[string]time.Duration{}
			for i := range n {
				name := "10.0.0." + string(rune('a'+i))
				p.Targets = append(p.Targets, name)
				results[name] = result(p.Count, rng.IntN(p.Count+1), time.Duration(rng.IntN(1500))*time.Millisecond)
				delays[name] = time.Duration(rng.IntN(5000)) * time.Millisecond
			}
			pr := proberFunc(func(ctx context.Context, target string) Result {
				select {
				case <-time.After(delays[target]):
					return results[target]
				case <-ctx.Done():
					return Result{Err: ctx.Err()}
				}
			})
			out := make([]outcome, n)
			for i := range out {
				out[i].target = p.Targets[i]
			}
			runRound(context.Background(), &p, pr, out, pool)
			if pool.workers > 6 {
				t.Fatalf("iteration %d: %d probe goroutines for at most 6 targets", iter, pool.workers)
			}

			// Legacy: one target after the other.
			hostUp := 0
			for i, name := range p.Targets {
				want := outcome{target: name, state: TargetSkipped}
				if hostUp < p.Reliability {
					want = outcome{target: name, result: results[name], probed: true}
					classify(&p, &want)
					if want.state == TargetUp {
						hostUp++
					}
				}
				got := out[i]
				if got.state != want.state || got.probed != want.probed || got.quality != want.quality ||
					(want.quality && (got.latency != want.latency || got.loss != want.loss)) {
					t.Fatalf("iteration %d target %d: got %+v, want %+v", iter, i, got, want)
				}
			}
		}
	})
}

type proberFunc func(ctx context.Context, target string) Result

func (f proberFunc) Probe(ctx context.Context, target string) Result { return f(ctx, target) }

// TestRunRoundCancelsSkipped checks that probes of skipped targets are
// cancelled once the round is decided, so the round does not wait for them.
func TestRunRoundCancelsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := DefaultParams("a", "b")
		pr := proberFunc(func(ctx context.Context, target string) Result {
			d := 10 * time.Millisecond
			if target == "b" {
				d = time.Hour
			}
			select {
			case <-time.After(d):
				return result(1, 1, d)
			case <-ctx.Done():
				return Result{Err: ctx.Err()}
			}
		})
		out := []outcome{{target: "a"}, {target: "b"}}
		start := time.Now()
		pool := newProbePool()
		defer pool.close()
		runRound(context.Background(), &p, pr, out, pool)
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Errorf("round took %v, want 10ms", d)
		}
		if out[0].state != TargetUp || out[1].state != TargetSkipped {
			t.Errorf("states %s %s", out[0].state, out[1].state)
		}
	})
}

func TestQualityRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := DefaultParams()
		p.Interval = time.Second
		n := qualitySlots(&p)
		if n != 62 {
			t.Errorf("slots for 60 s at 1 s: %d, want 62", n)
		}
		p.Interval, p.FailureInterval, p.RecoveryInterval = time.Second, time.Second, time.Second
		p.QualityWindow = time.Hour
		if n := qualitySlots(&p); n != maxQualitySlots {
			t.Errorf("slots capped at %d, got %d", maxQualitySlots, n)
		}
		q := newQualityRing(4)
		if st := q.stats(time.Now(), time.Minute); st.Sent != 0 || st.LossPercent != 0 || st.RTTAvg != 0 {
			t.Errorf("empty ring: %+v", st)
		}
		q.add(time.Now(), result(2, 2, 10*time.Millisecond))
		time.Sleep(time.Second)
		q.add(time.Now(), result(2, 1, 30*time.Millisecond))
		q.add(time.Now(), Result{}) // nothing sent: ignored
		st := q.stats(time.Now(), time.Minute)
		// RTTs 10, 10, 30: mean 16.67 ms, population stddev 9.43 ms; loss 1 of 4.
		if st.Sent != 4 || st.Received != 3 || st.LossPercent != 25 {
			t.Errorf("counts: %+v", st)
		}
		if st.RTTAvg.Round(10*time.Microsecond) != 16670*time.Microsecond ||
			st.RTTStdDev.Round(10*time.Microsecond) != 9430*time.Microsecond {
			t.Errorf("rtt avg %v stddev %v", st.RTTAvg, st.RTTStdDev)
		}
		time.Sleep(59 * time.Second)
		if st := q.stats(time.Now(), time.Minute); st.Sent != 2 {
			t.Errorf("after 60 s only the second probe is in the window: %+v", st)
		}
		for range 10 { // the ring never grows
			q.add(time.Now(), result(1, 1, time.Millisecond))
		}
		if len(q.slots) != 4 {
			t.Errorf("ring grew to %d", len(q.slots))
		}
		if st := q.stats(time.Now(), time.Minute); st.Sent != 4 || st.RTTAvg != time.Millisecond {
			t.Errorf("full ring: %+v", st)
		}
	})
}

func TestFileStore(t *testing.T) {
	base := t.TempDir()
	s := newFileStore(base, "wan")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(base, "wan", name))
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	mustOK(t, s.write("STATUS", "online"))
	if got := read("STATUS"); got != "online\n" {
		t.Errorf("STATUS = %q", got)
	}
	// Unchanged values are not rewritten: remove the file behind the
	// store's back and write the same value.
	mustOK(t, os.Remove(filepath.Join(base, "wan", "STATUS")))
	mustOK(t, s.write("STATUS", "online"))
	if _, err := os.Stat(filepath.Join(base, "wan", "STATUS")); err == nil {
		t.Error("unchanged value written again")
	}
	// The directory is recreated when removed (legacy's mkdir -p).
	mustOK(t, os.RemoveAll(filepath.Join(base, "wan")))
	mustOK(t, s.write("SCORE", "10"))
	if got := read("SCORE"); got != "10\n" {
		t.Errorf("SCORE = %q", got)
	}
	for _, bad := range []string{"", ".", "..", "TRACK_../x", "a\x00b"} {
		if err := s.write(bad, "x"); err == nil {
			t.Errorf("write(%q) succeeded", bad)
		}
	}
	mustOK(t, s.write("TRACK_2606:4700:4700::1111", "up"))
	if got := read("TRACK_2606:4700:4700::1111"); got != "up\n" {
		t.Errorf("IPv6 target file = %q", got)
	}
	// TURN and TIME change after every round (kept open and exchanged on
	// Linux): values growing and shrinking, the file, the whole directory
	// or the spare directory removed under the store.
	for _, step := range []struct{ remove, value string }{
		{"", "1"}, {"", "2"}, {"", "10"}, {"", "11"}, {"", "0"}, {"", "7"},
		{"TURN", "8"}, {"", "100"}, {"dir", "9"}, {"", "10"}, {"spare", "11"}, {"", "3"},
	} {
		switch step.remove {
		case "TURN":
			mustOK(t, os.Remove(filepath.Join(base, "wan", "TURN")))
		case "dir":
			mustOK(t, os.RemoveAll(filepath.Join(base, "wan")))
		case "spare": // Linux keeps the previous values in a hidden sibling
			mustOK(t, os.RemoveAll(filepath.Join(base, ".wan.spare")))
		}
		mustOK(t, s.write("TURN", step.value))
		mustOK(t, s.write("TIME", "1"+step.value))
		if got := read("TURN"); got != step.value+"\n" {
			t.Errorf("after removing %q and writing TURN %s: TURN = %q", step.remove, step.value, got)
		}
		if got := read("TIME"); got != "1"+step.value+"\n" {
			t.Errorf("TIME = %q, want 1%s", got, step.value)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(base, "wan"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	mustOK(t, s.remove("TRACK_2606:4700:4700::1111"))
	mustOK(t, s.remove("TRACK_absent"))
	mustOK(t, s.removeAll())
	if ents, _ := os.ReadDir(base); len(ents) > 0 {
		t.Errorf("%s left after removeAll", ents[0].Name())
	}
	none := newFileStore("", "wan")
	mustOK(t, none.write("STATUS", "online"))
}

// TestFileStoreOpenReader checks what a reader that opened TURN just
// before a new value was written reads: still the whole value it opened
// (on Linux the inode it holds is only rewritten at the write after next,
// a round later).
func TestFileStoreOpenReader(t *testing.T) {
	base := t.TempDir()
	s := newFileStore(base, "wan")
	path := filepath.Join(base, "wan", "TURN")
	for i := range 5 {
		mustOK(t, s.write("TURN", strconv.Itoa(i)))
		f, err := os.Open(path)
		mustOK(t, err)
		mustOK(t, s.write("TURN", strconv.Itoa(i+10)))
		b, err := io.ReadAll(f)
		f.Close()
		mustOK(t, err)
		if want := strconv.Itoa(i) + "\n"; string(b) != want {
			t.Errorf("reader opened at %d read %q", i, b)
		}
		if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(i+10)+"\n" {
			t.Errorf("after writing %d: %q", i+10, b)
		}
	}
	mustOK(t, s.removeAll())
}

// sinkRecorder records what the machine does.
type sinkRecorder struct {
	files  map[string]string
	events []string
}

func (r *sinkRecorder) file(name, value string) { r.files[name] = value }
func (r *sinkRecorder) event(a Action, first bool) {
	s := string(a)
	if first {
		s += " first"
	}
	r.events = append(r.events, s)
}

// TestMachineTable walks the §5.5 tables directly: score, status, events
// and pause after each round.
func TestMachineTable(t *testing.T) {
	p := DefaultParams("x")
	p.Down, p.Up = 3, 2
	p.Interval, p.FailureInterval, p.RecoveryInterval = 10*time.Second, 3*time.Second, 5*time.Second
	rec := &sinkRecorder{files: map[string]string{}}
	m := newMachine("wan", &p, discardLogger(), rec)
	m.firstConnect(100, "eth1", true, true)
	type row struct {
		ok     bool
		score  int
		status Status
		file   Status
		events string
		pause  time.Duration
	}
	rows := []row{
		{true, 5, StatusOnline, StatusOnline, "", 10 * time.Second},
		{false, 4, StatusDisconnecting, StatusDisconnecting, "disconnecting", 3 * time.Second}, // score > U
		{false, 3, StatusDisconnecting, StatusDisconnecting, "", 3 * time.Second},
		{true, 5, StatusOnline, StatusOnline, "", 10 * time.Second}, // success while disconnecting (REC)
		{false, 4, StatusDisconnecting, StatusDisconnecting, "disconnecting", 3 * time.Second},
		{false, 3, StatusDisconnecting, StatusDisconnecting, "", 3 * time.Second},
		{false, 0, StatusOffline, StatusOffline, "disconnected", 3 * time.Second}, // score == U
		{false, 0, StatusOffline, StatusOffline, "", 10 * time.Second},            // score < U
		{true, 1, StatusConnecting, StatusConnecting, "connecting", 5 * time.Second},
		{false, 0, StatusConnecting, StatusConnecting, "", 10 * time.Second}, // reset while connecting
		{true, 1, StatusConnecting, StatusConnecting, "", 5 * time.Second},
		{true, 5, StatusOnline, StatusOnline, "connected", 5 * time.Second}, // score == U: connected, score D+U
		{true, 5, StatusOnline, StatusOnline, "", 10 * time.Second},
	}
	if got := strings.Join(rec.events, ","); got != "connected first" {
		t.Fatalf("first connect events %q", got)
	}
	for i, r := range rows {
		rec.events = nil
		st := TargetDown
		if r.ok {
			st = TargetUp
		}
		pause := m.round(int64(200+i), []outcome{{target: "x", state: st, probed: true}})
		if m.score != r.score || m.status != r.status || m.fileStatus != r.file ||
			strings.Join(rec.events, ",") != r.events || pause != r.pause {
			t.Errorf("row %d: score %d status %s file %s events %q pause %v; want %d %s %s %q %v",
				i, m.score, m.status, m.fileStatus, rec.events, pause, r.score, r.status, r.file, r.events, r.pause)
		}
		if rec.files["SCORE"] != itoa(m.score) || rec.files["TIME"] != itoa(200+i) {
			t.Errorf("row %d: files %v", i, rec.files)
		}
	}
	// ifdown from connecting: no disconnected event (file was connecting).
	rec.events = nil
	m.round(300, []outcome{{target: "x", state: TargetDown, probed: true}})
	m.round(301, []outcome{{target: "x", state: TargetDown, probed: true}})
	m.round(302, []outcome{{target: "x", state: TargetDown, probed: true}}) // score 2 == U: disconnected
	m.round(303, []outcome{{target: "x", state: TargetUp, probed: true}})   // connecting
	rec.events = nil
	m.ifDown(304)
	if len(rec.events) != 0 || rec.files["STATUS"] != "disabled" || rec.files["STARTED"] != "0" || rec.files["OFFLINE"] != "304" {
		t.Errorf("ifdown from connecting: events %v files %v", rec.events, rec.files)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestImports checks that no probe can fork (no os/exec), that the
// package imports no other package of the project (only daemon does) and
// that its code stays clear of net/http and crypto (each adds megabytes to
// the router's binary; httping.go speaks the little it needs itself).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	mustOK(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		mustOK(t, err)
		test := strings.HasSuffix(name, "_test.go")
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if path == "os/exec" || (!test && (path == "net/http" || path == "crypto" || strings.HasPrefix(path, "crypto/"))) {
				t.Errorf("%s imports %s", name, path)
			}
			if strings.HasPrefix(path, "github.com/mwan3d/mwan3d/") && !(test && (path == "github.com/mwan3d/mwan3d/internal/testbed" || path == "github.com/mwan3d/mwan3d/internal/golden")) {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
