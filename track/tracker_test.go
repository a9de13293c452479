package track

import (
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

var (
	bindWAN  = Binding{Device: "eth1", Source: netip.MustParseAddr("10.0.1.2"), Mark: 0x3f00}
	bindWAN2 = Binding{Device: "eth9", Source: netip.MustParseAddr("10.0.9.2"), Mark: 0x3f00}
)

const s = time.Second

// TestTrackerScenarios replays spec §5.5/§5.6 line by line in virtual
// time: the exact probe starts (hence the pause lengths) and events.
func TestTrackerScenarios(t *testing.T) {
	type step struct {
		at time.Duration
		do func(h *harness)
	}
	tests := []struct {
		name   string
		params func(p *Params)
		run    script
		start  *Binding // nil: bindWAN; Start with up=false when Device == ""
		steps  []step
		until  time.Duration
		want   []string
		files  map[string]string
		logs   []string
	}{
		{
			name:  "defaults: D failed rounds to offline, failure_interval pauses",
			run:   cutBetween(25*s, 0),
			until: 99 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"20s probe 1.1.1.1 eth1/10.0.1.2",
				"30s probe 1.1.1.1 eth1/10.0.1.2", // fails after timeout 4 s
				"34s event wan disconnecting dev=eth1",
				"44s probe 1.1.1.1 eth1/10.0.1.2",
				"58s probe 1.1.1.1 eth1/10.0.1.2",
				"1m12s probe 1.1.1.1 eth1/10.0.1.2",
				"1m26s probe 1.1.1.1 eth1/10.0.1.2",
				"1m30s event wan disconnected dev=eth1",
			},
			files: map[string]string{
				"STATUS": "offline", "SCORE": "0", "LOST": "5", "TURN": "8", "TIME": "1090",
				"ONLINE": "0", "OFFLINE": "1090", "STARTED": "1", "TRACK_1.1.1.1": "down",
			},
			logs: []string{
				"Interface wan (eth1) is disconnecting",
				`Check (ping) failed for target "1.1.1.1" on interface wan (eth1). Current score: 10`,
				`Check (ping) failed for target "1.1.1.1" on interface wan (eth1). Current score: 6`,
				"Interface wan (eth1) is offline",
			},
		},
		{
			name: "initial_state offline: U successful rounds, a failure while connecting resets the score",
			params: func(p *Params) {
				p.InitialState = StatusOffline
				p.RecoveryInterval = 5 * s
			},
			run: func(_ string, at time.Duration, _ Binding) reply {
				if at >= 8*s && at < 12*s {
					return down
				}
				return up
			},
			until: 60 * s,
			want: []string{
				"0s event wan connecting dev=eth1", // quiet offline, then the first success
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"5s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2", // fails at 14 s: score 0, pause interval
				"24s probe 1.1.1.1 eth1/10.0.1.2",
				"29s probe 1.1.1.1 eth1/10.0.1.2",
				"34s probe 1.1.1.1 eth1/10.0.1.2",
				"39s probe 1.1.1.1 eth1/10.0.1.2",
				"44s event wan connected dev=eth1",
				"44s probe 1.1.1.1 eth1/10.0.1.2",
				"49s probe 1.1.1.1 eth1/10.0.1.2", // recovery_interval after connected
				"59s probe 1.1.1.1 eth1/10.0.1.2", // steady: interval
			},
			files: map[string]string{"STATUS": "online", "SCORE": "10", "TURN": "3", "ONLINE": "1044", "OFFLINE": "0"},
			logs: []string{
				"Interface wan (eth1) is connecting",
				`Check (ping) success for target "1.1.1.1" on interface wan (eth1). Current score: 0`,
				"Interface wan (eth1) is online",
			},
		},
		{
			name: "check_quality latency thresholds and skipped",
			params: func(p *Params) {
				p.Targets = []string{"10.9.0.1", "10.9.0.2", "10.9.0.3"}
				p.Reliability = 2
				p.CheckQuality = true
			},
			run: func(target string, _ time.Duration, _ Binding) reply {
				switch target {
				case "10.9.0.1":
					return reply{answered: -1, rtt: 700 * time.Millisecond} // between recovery and failure: neither
				case "10.9.0.2":
					return reply{answered: -1, rtt: 200 * time.Millisecond}
				default:
					return reply{answered: -1, rtt: 1200 * time.Millisecond}
				}
			},
			until: 5 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 10.9.0.1 eth1/10.0.1.2",
				"0s probe 10.9.0.2 eth1/10.0.1.2",
				"0s probe 10.9.0.3 eth1/10.0.1.2",
				"1.2s event wan disconnecting dev=eth1", // one up < reliability 2
			},
			files: map[string]string{
				"TRACK_10.9.0.1": "skipped", "LATENCY_10.9.0.1": "<open", "LOSS_10.9.0.1": "<open",
				"TRACK_10.9.0.2": "up", "LATENCY_10.9.0.2": "200", "LOSS_10.9.0.2": "0",
				"TRACK_10.9.0.3": "down", "LATENCY_10.9.0.3": "1200", "LOSS_10.9.0.3": "0",
				"SCORE": "9", "LOST": "1", "STATUS": "disconnecting",
				"TRACK_OUTPUT": "--- 10.9.0.3 ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss\nrtt min/avg/max/mdev = 1200.000/1200.000/1200.000/0.000 ms",
			},
			logs: []string{`Check (ping: latency=1200ms loss=0%) failed for target "10.9.0.3" on interface wan (eth1). Current score: 10`},
		},
		{
			name: "check_quality loss thresholds",
			params: func(p *Params) {
				p.Targets = []string{"10.9.0.1", "10.9.0.2", "10.9.0.3"}
				p.Reliability = 3
				p.Count = 5
				p.CheckQuality = true
			},
			run: func(target string, _ time.Duration, _ Binding) reply {
				switch target {
				case "10.9.0.1":
					return reply{answered: 3, rtt: 10 * time.Millisecond} // 40 % ≥ failure_loss
				case "10.9.0.2":
					return reply{answered: 4, rtt: 10 * time.Millisecond} // 20 %: neither
				default:
					return reply{answered: 0} // 100 %: latency 999999
				}
			},
			until: 9 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 10.9.0.1 eth1/10.0.1.2",
				"0s probe 10.9.0.2 eth1/10.0.1.2",
				"0s probe 10.9.0.3 eth1/10.0.1.2",
				"8s event wan disconnecting dev=eth1", // 4·1 s + timeout
			},
			files: map[string]string{
				"TRACK_10.9.0.1": "down", "LATENCY_10.9.0.1": "10", "LOSS_10.9.0.1": "40",
				"TRACK_10.9.0.2": "skipped", "LATENCY_10.9.0.2": "<open",
				"TRACK_10.9.0.3": "down", "LATENCY_10.9.0.3": "999999", "LOSS_10.9.0.3": "100",
				"LOST": "2",
			},
		},
		{
			name: "reliability: targets after the reliability-th success are skipped",
			params: func(p *Params) {
				p.Targets = []string{"10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4"}
				p.Reliability = 2
			},
			run: func(target string, at time.Duration, _ Binding) reply {
				if target == "10.9.0.2" && at >= 10*s {
					return down
				}
				return up
			},
			until: 25 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 10.9.0.1 eth1/10.0.1.2",
				"0s probe 10.9.0.2 eth1/10.0.1.2",
				"0s probe 10.9.0.3 eth1/10.0.1.2",
				"0s probe 10.9.0.4 eth1/10.0.1.2",
				"10s probe 10.9.0.1 eth1/10.0.1.2",
				"10s probe 10.9.0.2 eth1/10.0.1.2",
				"10s probe 10.9.0.3 eth1/10.0.1.2",
				"10s probe 10.9.0.4 eth1/10.0.1.2",
				// the round waits for .2 (down after 4 s); .1 and .3 make it a success
				"24s probe 10.9.0.1 eth1/10.0.1.2",
				"24s probe 10.9.0.2 eth1/10.0.1.2",
				"24s probe 10.9.0.3 eth1/10.0.1.2",
				"24s probe 10.9.0.4 eth1/10.0.1.2",
			},
			files: map[string]string{
				"TRACK_10.9.0.1": "up", "TRACK_10.9.0.2": "down", "TRACK_10.9.0.3": "up", "TRACK_10.9.0.4": "skipped",
				"LOST": "0", "SCORE": "10", "STATUS": "online",
			},
		},
		{
			name: "keep_failure_interval keeps failure_interval while offline",
			params: func(p *Params) {
				p.Down, p.Up = 2, 2
				p.FailureInterval = 3 * s
				p.KeepFailureInterval = true
			},
			run:   cutBetween(5*s, 0),
			until: 40 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"14s event wan disconnecting dev=eth1",
				"17s probe 1.1.1.1 eth1/10.0.1.2",
				"21s event wan disconnected dev=eth1",
				"24s probe 1.1.1.1 eth1/10.0.1.2",
				"31s probe 1.1.1.1 eth1/10.0.1.2", // keep: failure_interval (3 s), not interval
				"38s probe 1.1.1.1 eth1/10.0.1.2",
			},
		},
		{
			name: "without keep_failure_interval the offline pause is interval",
			params: func(p *Params) {
				p.Down, p.Up = 2, 2
				p.FailureInterval = 3 * s
			},
			run:   cutBetween(5*s, 0),
			until: 40 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"14s event wan disconnecting dev=eth1",
				"17s probe 1.1.1.1 eth1/10.0.1.2",
				"21s event wan disconnected dev=eth1",
				"24s probe 1.1.1.1 eth1/10.0.1.2",
				"38s probe 1.1.1.1 eth1/10.0.1.2",
			},
		},
		{
			name: "a success while disconnecting restores online; the next degradation fires disconnecting again (REC)",
			run: func(_ string, at time.Duration, _ Binding) reply {
				if (at >= 10*s && at < 12*s) || (at >= 34*s && at < 36*s) {
					return down
				}
				return up
			},
			until: 50 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"14s event wan disconnecting dev=eth1",
				"24s probe 1.1.1.1 eth1/10.0.1.2", // success: score 10, STATUS online
				"34s probe 1.1.1.1 eth1/10.0.1.2",
				"38s event wan disconnecting dev=eth1",
				"48s probe 1.1.1.1 eth1/10.0.1.2",
			},
			files: map[string]string{"STATUS": "online", "SCORE": "10", "LOST": "0"},
			logs:  []string{"Lost 1 ping(s) on interface wan (eth1). Current score: 9"},
		},
		{
			name: "ifdown during a round: the aborted probe fails the round, then disconnected and disabled; ifup runs first connect at once",
			run:  cutBetween(20*s, 30*s),
			steps: []step{
				{22 * s, func(h *harness) { mustOK(h.t, h.m.IfDown("wan")) }},
				{35 * s, func(h *harness) {
					if st, _ := h.m.Status("wan"); st.Tracking != TrackingPaused || st.Status != StatusDisabled {
						h.t.Errorf("after ifdown: tracking %s status %s, want paused disabled", st.Tracking, st.Status)
					}
					if got := h.file("wan", "STARTED"); got != "0" {
						h.t.Errorf("STARTED after ifdown = %s, want 0", got)
					}
				}},
				{40 * s, func(h *harness) { mustOK(h.t, h.m.IfUp("wan", bindWAN2)) }},
			},
			until: 45 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"20s probe 1.1.1.1 eth1/10.0.1.2",
				"22s event wan disconnected dev=eth1",
				"22s event wan disconnecting dev=eth1",
				"40s event wan connected dev=eth9 first",
				"40s probe 1.1.1.1 eth9/10.0.9.2",
			},
			files: map[string]string{"STATUS": "online", "STARTED": "1", "ONLINE": "1040", "SCORE": "10"},
			logs:  []string{"Detect ifdown event on interface wan (eth1)", "Detect ifup event on interface wan (eth1)"},
		},
		{
			name:  "interface down at start: disabled until ifup, then first connect at once",
			run:   cutBetween(time.Hour, 0),
			start: &Binding{},
			steps: []step{
				{3 * s, func(h *harness) {
					if st, _ := h.m.Status("wan"); st.Tracking != TrackingPaused {
						h.t.Errorf("before ifup: tracking %s, want paused", st.Tracking)
					}
				}},
				{5 * s, func(h *harness) { mustOK(h.t, h.m.IfUp("wan", bindWAN)) }},
			},
			until: 16 * s,
			want: []string{
				"5s event wan connected dev=eth1 first",
				"5s probe 1.1.1.1 eth1/10.0.1.2",
				"15s probe 1.1.1.1 eth1/10.0.1.2",
			},
			files: map[string]string{"STARTED": "1", "STATUS": "online"},
		},
		{
			name:   "reliability above the number of targets: never online",
			params: func(p *Params) { p.Reliability = 2 },
			run:    cutBetween(time.Hour, 0),
			until:  95 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s event wan disconnecting dev=eth1",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"20s probe 1.1.1.1 eth1/10.0.1.2",
				"30s probe 1.1.1.1 eth1/10.0.1.2",
				"40s event wan disconnected dev=eth1",
				"40s probe 1.1.1.1 eth1/10.0.1.2",
				"50s probe 1.1.1.1 eth1/10.0.1.2",
				"1m0s probe 1.1.1.1 eth1/10.0.1.2",
				"1m10s probe 1.1.1.1 eth1/10.0.1.2",
				"1m20s probe 1.1.1.1 eth1/10.0.1.2",
				"1m30s probe 1.1.1.1 eth1/10.0.1.2",
			},
			files: map[string]string{"STATUS": "offline", "TRACK_1.1.1.1": "up"},
		},
		{
			name: "carrier loss: offline at once, no probing without carrier, recovery from carrier back",
			run:  cutBetween(time.Hour, 0),
			steps: []step{
				{15 * s, func(h *harness) { h.m.Carrier("eth1", false) }},
				{40 * s, func(h *harness) { h.m.Carrier("eth1", true) }},
			},
			until: 85 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"15s event wan disconnected dev=eth1",
				"40s event wan connecting dev=eth1",
				"40s probe 1.1.1.1 eth1/10.0.1.2",
				"50s probe 1.1.1.1 eth1/10.0.1.2",
				"1m0s probe 1.1.1.1 eth1/10.0.1.2",
				"1m10s probe 1.1.1.1 eth1/10.0.1.2",
				"1m20s event wan connected dev=eth1",
				"1m20s probe 1.1.1.1 eth1/10.0.1.2",
			},
			files: map[string]string{"STATUS": "online", "OFFLINE": "0", "ONLINE": "1080"},
		},
		{
			name: "carrier loss during a round drops the round",
			run:  cutBetween(20*s, 0),
			steps: []step{
				{22 * s, func(h *harness) { h.m.Carrier("eth1", false) }},
			},
			until: 60 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"20s probe 1.1.1.1 eth1/10.0.1.2",
				"22s event wan disconnected dev=eth1",
			},
			files: map[string]string{"STATUS": "offline", "OFFLINE": "1022", "SCORE": "0", "TURN": "2"},
		},
		{
			name: "ifupdate refreshes the source address without events",
			run:  cutBetween(time.Hour, 0),
			steps: []step{
				{15 * s, func(h *harness) {
					mustOK(h.t, h.m.IfUpdate("wan", Binding{Device: "eth1", Source: netip.MustParseAddr("10.0.1.99")}))
				}},
			},
			until: 25 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"20s probe 1.1.1.1 eth1/10.0.1.99",
			},
		},
		{
			name: "reconfigure keeps the status and applies the new interval at once",
			run:  cutBetween(time.Hour, 0),
			steps: []step{
				{15 * s, func(h *harness) {
					p := DefaultParams("1.1.1.1")
					p.Interval = 3 * s
					mustOK(h.t, h.m.Reconfigure("wan", p))
					mustOK(h.t, h.m.Reconfigure("wan", p)) // unchanged: no-op
				}},
			},
			until: 22 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"10s probe 1.1.1.1 eth1/10.0.1.2",
				"15s probe 1.1.1.1 eth1/10.0.1.2",
				"18s probe 1.1.1.1 eth1/10.0.1.2",
				"21s probe 1.1.1.1 eth1/10.0.1.2",
			},
			files: map[string]string{"STATUS": "online", "SCORE": "10"},
		},
		{
			name:   "timeout 0 is raised to one second",
			params: func(p *Params) { p.Timeout = 0; p.Down = 1 },
			run:    cutBetween(0, 0),
			until:  2 * s,
			want: []string{
				"0s event wan connected dev=eth1 first",
				"0s probe 1.1.1.1 eth1/10.0.1.2",
				"1s event wan disconnected dev=eth1",
				"1s event wan disconnecting dev=eth1",
			},
			logs: []string{"timeout 0s of interface wan is invalid; using 1s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, tc.run)
				p := DefaultParams("1.1.1.1")
				if tc.params != nil {
					tc.params(&p)
				}
				b := bindWAN
				if tc.start != nil {
					b = *tc.start
				}
				mustOK(t, h.m.Start("wan", p, b, b.Device != ""))
				for _, st := range tc.steps {
					h.at(st.at)
					synctest.Wait()
					st.do(h)
				}
				h.at(tc.until)
				synctest.Wait()
				got := h.tl.get()
				files := map[string]string{}
				for name := range tc.files {
					files[name] = h.file("wan", name)
				}
				h.close()
				diffLines(t, got, tc.want)
				for name, want := range tc.files {
					if got := files[name]; got != want && !(want == "<open" && len(got) > 5 && got[:5] == "<open") {
						t.Errorf("file %s = %q, want %q", name, got, want)
					}
				}
				for _, l := range tc.logs {
					if !h.logs.has(l) {
						t.Errorf("missing log message %q", l)
					}
				}
			})
		})
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStopRemovesFiles checks Stop (no event, files gone, tracking down)
// and Close.
func TestStopRemovesFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, cutBetween(time.Hour, 0))
		mustOK(t, h.m.Start("wan", DefaultParams("1.1.1.1"), bindWAN, true))
		if err := h.m.Start("wan", DefaultParams("1.1.1.1"), bindWAN, true); err == nil {
			t.Error("second Start of the same interface succeeded")
		}
		h.at(5 * s)
		synctest.Wait()
		if got := h.file("wan", "STATUS"); got != "online" {
			t.Errorf("STATUS = %q", got)
		}
		mustOK(t, h.m.Stop("wan"))
		if got := h.file("wan", "STATUS"); got[0] != '<' {
			t.Errorf("STATUS after stop = %q, want no file", got)
		}
		if st, ok := h.m.Status("wan"); ok || st.Tracking != TrackingDown {
			t.Errorf("status after stop: %v %v", st.Tracking, ok)
		}
		if err := h.m.IfUp("wan", bindWAN); !errors.Is(err, ErrUnknownInterface) {
			t.Errorf("IfUp after stop: %v", err)
		}
		h.close()
		if err := h.m.Start("wanb", DefaultParams("1.1.1.1"), bindWAN, true); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Close: %v", err)
		}
		diffLines(t, h.tl.get(), []string{
			"0s event wan connected dev=eth1 first",
			"0s probe 1.1.1.1 eth1/10.0.1.2",
		})
	})
}

// TestBadInput covers inputs that must give an error or a warning, never
// a panic.
func TestBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, cutBetween(time.Hour, 0))
		for _, name := range []string{"", ".", "..", "a/b", "x\x00"} {
			if err := h.m.Start(name, DefaultParams("1.1.1.1"), bindWAN, true); err == nil {
				t.Errorf("Start(%q) succeeded", name)
			}
		}
		if err := h.m.Start("wanx", DefaultParams(), bindWAN, true); err == nil {
			t.Error("Start without targets succeeded")
		}
		// A prober that cannot be built (device name too long, …): every
		// probe fails, the interface degrades as legacy did when the shim
		// aborted the probe program.
		h.net.fail = errors.New("device name too long")
		p := DefaultParams("1.1.1.1")
		p.Down = 1
		mustOK(t, h.m.Start("wan", p, bindWAN, true))
		h.at(1 * s)
		synctest.Wait()
		st, _ := h.m.Status("wan")
		if st.Status != StatusOffline || st.Targets[0].LastError != "device name too long" {
			t.Errorf("status %s, target error %q", st.Status, st.Targets[0].LastError)
		}
		// A target file name that would escape the directory is refused.
		mustOK(t, h.m.Start("wanb", DefaultParams("../../x"), bindWAN2, true))
		h.at(2 * s)
		synctest.Wait()
		h.close()
		if !h.logs.has("tracker file") {
			t.Error("no warning for an invalid tracker file name")
		}
		if !h.logs.has(`track_ip "../../x" of interface wanb: neither an IP address nor a host name (every probe of it will fail)`) {
			t.Error("no warning for an invalid target")
		}
	})
}

// TestEventsNotLost checks that a slow reader loses no events and that
// commands never block while a tracker waits to deliver one.
func TestEventsNotLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		tl := &timeline{start: start}
		m := NewManager(Config{
			Probers:     &fakeNet{start: start, run: cutBetween(0, 0), tl: tl},
			EventBuffer: 1,
		})
		p := DefaultParams("1.1.1.1")
		p.Down, p.Up = 1, 1
		for _, name := range []string{"a", "b", "c"} {
			mustOK(t, m.Start(name, p, bindWAN, true))
		}
		time.Sleep(10 * s)
		synctest.Wait()
		for range 10 { // never blocks although nobody reads events
			mustOK(t, m.IfDown("a"))
			mustOK(t, m.IfUp("a", bindWAN))
		}
		count := map[string]int{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range m.Events() {
				count[ev.Interface+" "+string(ev.Action)]++
			}
		}()
		time.Sleep(6 * s) // trackers blocked on their first event start probing only now
		synctest.Wait()
		m.Close()
		<-done
		// b and c: connected (first), disconnecting, disconnected.
		for _, k := range []string{"b connected", "b disconnecting", "b disconnected", "c connected"} {
			if count[k] != 1 {
				t.Errorf("%s: %d events, want 1 (%v)", k, count[k], count)
			}
		}
		if count["a connected"] != 11 {
			t.Errorf("a connected: %d events, want 11 (%v)", count["a connected"], count)
		}
	})
}
