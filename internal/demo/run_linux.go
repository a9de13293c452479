//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/ubus"
	"golang.org/x/sys/unix"
)

// The flow generator: each family opens flowBatch new TCP connections
// from the LAN client every flowEvery, each bounded by flowTimeout.
const (
	flowBatch   = 8
	flowEvery   = 250 * time.Millisecond
	flowTimeout = time.Second
)

// Pacing of the loop.
const (
	tick        = 100 * time.Millisecond // schedule resolution
	redrawEvery = time.Second
	callTimeout = 2 * time.Second
	ttyEvents   = 10 // event lines a terminal shows
	ownPings    = 3  // pings per WAN per second of the demo's own probe
	ownWindow   = 30 // pings the own probe's statistics cover
)

// interfaceEvent is the daemon's ubus event for interface transitions.
const interfaceEvent = "mwan3.interface"

// demo is one run.
type demo struct {
	o      options
	cfg    *demoConfig
	tl     timeline
	cut    []string // the interfaces of the cut WAN: wan, wan6
	out    *outWriter
	errw   io.Writer
	tty    bool
	width  func() int // of the terminal, 0 when unknown
	log    *slog.Logger
	start  time.Time
	b      *bed.Bed
	rows   []row
	pid    int    // the daemon's
	source string // of the quality columns: qualityDaemon or qualityDemo

	mu     sync.Mutex // guards the fields below, written by the generators and the listener
	flows  *flowLog
	events eventLog
	obs    *observer
	own    map[string]*pingWindow // the own probe's results, by interface
	shown  int                    // events printed so far (plain mode)
	height int                    // lines of the last snapshot (terminal mode)
}

// play runs the demo and returns the exit status.
func play(o options, cfg *demoConfig, stdout, stderr io.Writer) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "demo: needs root: it builds network namespaces, links, routes and nftables rules (run: sudo make demo)")
		return 1
	}
	bin, err := binary(o.Binary)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	o.Binary = bin
	d := &demo{
		o: o, cfg: cfg,
		out: &outWriter{w: stdout}, errw: stderr,
		tty: !o.Plain && isTerminal(stdout), width: termWidth(stdout),
		log:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		cut:   []string{testbed.WANName(0), testbed.WANName(0) + "6"},
		flows: newFlowLog(maxWindow),
		own:   map[string]*pingWindow{},
	}
	var cutIfaces []*config.Interface
	for _, n := range d.cut {
		i, err := cfg.iface(n)
		if err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return 1
		}
		cutIfaces = append(cutIfaces, i)
	}
	if d.tl, err = planTimeline(cutIfaces, o.Cut, o.CutAfter, o.Outage, o.Duration); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A closed output (`make demo | head`) must not kill the demo before
	// its teardown: with SIGPIPE handled, the write fails instead, and the
	// demo ends as if interrupted.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	return d.run(ctx, cutIfaces[0])
}

// outWriter remembers whether a write to the output failed.
type outWriter struct {
	w      io.Writer
	mu     sync.Mutex
	broken error
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		o.mu.Lock()
		if o.broken == nil {
			o.broken = err
		}
		o.mu.Unlock()
	}
	return n, err
}

// err returns the first write error.
func (o *outWriter) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.broken
}

// binary checks the daemon binary and returns its absolute path.
func binary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("mwan3d binary %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("mwan3d binary: %w (build it with `make build`, or run `make demo`, which does)", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("mwan3d binary %s is not an executable file", abs)
	}
	return abs, nil
}

// isTerminal tells whether w is a terminal that understands ANSI
// sequences.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// termWidth returns a function that reads the width of the terminal w is
// (it may change), 0 when w is not a terminal.
func termWidth(w io.Writer) func() int {
	f, ok := w.(*os.File)
	return func() int {
		if !ok {
			return 0
		}
		ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
		if err != nil || ws.Col == 0 {
			return 0
		}
		return int(ws.Col) - 1 // the last column would wrap on some terminals
	}
}

// now is the time since the start of the demo.
func (d *demo) now() time.Duration { return time.Since(d.start) }

// note adds one of the demo's own actions to the event log (and, in
// plain mode, to the output with the next snapshot).
func (d *demo) note(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events.add(event{At: d.now(), Source: srcDemo, Text: fmt.Sprintf(format, args...)})
}

// run builds the bed, shows the demo, tears everything down and checks
// that nothing is left.
func (d *demo) run(ctx context.Context, cutIface *config.Interface) int {
	d.start = time.Now()
	b, err := bed.Open(bed.Options{WANs: 2, Family: testbed.Dual, Config: d.cfg.Text, Binary: d.o.Binary,
		FlowTimeout: flowTimeout, Logger: d.log})
	if err != nil {
		fmt.Fprintf(d.errw, "demo: %v\n", err)
		return 1
	}
	d.b = b
	d.rows = d.buildRows()
	d.note("built the testbed: %d network namespaces", 3+len(b.TB.WANs))
	code := d.show(ctx, cutIface)
	if err := d.teardown(); err != nil {
		fmt.Fprintf(d.errw, "demo: %v\n", err)
		code = 1
	}
	return code
}

// buildRows lists the enabled interfaces of the configuration that the
// bed has, in configuration order.
func (d *demo) buildRows() []row {
	devs := map[string]string{}
	for _, i := range bed.Interfaces(d.b.TB) {
		devs[i.Name] = i.Device
	}
	var rows []row
	for _, i := range d.cfg.Config.Interfaces {
		w := d.b.WANIndex(i.Name)
		if !i.Enabled || w < 0 {
			continue
		}
		f := fam4
		if i.Family == config.IPv6 {
			f = fam6
		}
		rows = append(rows, row{Name: i.Name, Device: devs[i.Name], Family: f, WAN: w})
	}
	return rows
}

// show starts the daemon and the traffic, plays the timeline and prints
// the snapshots and the summary; it returns the exit status.
func (d *demo) show(ctx context.Context, cutIface *config.Interface) int {
	targets, skipped := d.cfg.targets()
	fmt.Fprint(d.out, intro(d.cfg, d.tl, d.rows, cutIface, d.cut, targets, skipped))
	if err := d.b.TB.AddInternetAddrs(targets...); err != nil {
		fmt.Fprintf(d.errw, "demo: %v\n", err)
		return 1
	}
	d.note("the internet host answers the %d track_ip addresses", len(targets))
	d.obs = newObserver([numFamilies]string{d.cut[0], d.cut[1]},
		[numFamilies]string{testbed.WANName(1), testbed.WANName(1) + "6"}, 0, len(d.b.TB.WANs))
	listener, err := d.b.Client.Listen(ctx, interfaceEvent, d.onEvent)
	if err != nil {
		fmt.Fprintf(d.errw, "demo: listen for %s events: %v\n", interfaceEvent, err)
		return 1
	}
	defer listener.Close()
	err = d.b.Start(ctx)
	d.pid = d.b.Pid() // even after a failure: teardown checks it is gone
	if err != nil {
		return d.failed(ctx, fmt.Errorf("start mwan3d: %w", err))
	}
	d.note("started mwan3d (pid %d) in the router's namespace: mwan3d %s", d.pid, strings.Join(d.b.Args(), " "))
	names := make([]string, len(d.rows))
	for i, r := range d.rows {
		names[i] = r.Name
	}
	rep, err := d.b.WaitStatus(ctx, "online", names...)
	if err != nil {
		return d.failed(ctx, err)
	}
	online := d.now()
	d.note("all interfaces online: the timeline starts")
	d.source = d.qualitySource(rep)

	genCtx, stopGen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for f := range numFamilies {
		wg.Go(func() { d.generate(genCtx, f) })
	}
	if d.source == qualityDemo {
		wg.Go(func() { d.probe(genCtx) })
	}
	interrupted := d.play(ctx, online)
	stopGen()
	wg.Wait()
	if interrupted {
		d.note("interrupted")
	}
	// The last snapshot, even after an interruption.
	d.redraw(context.WithoutCancel(ctx), online, false)
	d.mu.Lock()
	lines, ok := d.obs.summary()
	d.mu.Unlock()
	fmt.Fprintf(d.out, "\nsummary:\n  %s\n", strings.Join(lines, "\n  "))
	if !ok && !interrupted {
		fmt.Fprintf(d.errw, "demo: failover and failback were not both seen; the daemon's log:\n%s\n", tail(d.b.Logs(), 60))
		return 1
	}
	return 0
}

// failed reports an error of the start-up with the daemon's log; an
// interruption is not a failure.
func (d *demo) failed(ctx context.Context, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintln(d.out, "\ninterrupted")
		return 0
	}
	fmt.Fprintf(d.errw, "demo: %v\nthe daemon's log:\n%s\n", err, tail(d.b.Logs(), 60))
	return 1
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// qualitySource picks the source of the latency, jitter and loss columns.
func (d *demo) qualitySource(rep ubus.Table) string {
	if d.o.Quality != qualityAuto {
		return d.o.Quality
	}
	st, err := parseStatus(rep)
	if err != nil {
		return qualityDemo
	}
	for _, s := range st {
		if s.HasQuality {
			return qualityDaemon
		}
	}
	return qualityDemo
}

// onEvent receives the daemon's mwan3.interface events.
func (d *demo) onEvent(_ string, data ubus.Table) {
	at := d.now()
	e, err := parseIfaceEvent(data)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.events.add(event{At: at, Source: srcDaemon, Text: err.Error()})
		return
	}
	d.events.add(event{At: at, Source: srcDaemon, Text: e.String()})
	if d.obs != nil {
		d.obs.event(at, e)
	}
}

// play runs the timeline from online (all interfaces online), redrawing
// every second; it returns true when interrupted.
func (d *demo) play(ctx context.Context, online time.Duration) bool {
	t := time.NewTicker(tick)
	defer t.Stop()
	cut, restored := false, false
	var last time.Duration = -redrawEvery
	first := true
	for {
		now := d.now() - online
		switch {
		case now >= d.tl.Duration:
			return false
		case !cut && now >= d.tl.CutAfter:
			cut = true
			d.cutWAN()
		case cut && !restored && now >= d.tl.restoreAt():
			restored = true
			d.restoreWAN()
		}
		if now-last >= redrawEvery {
			last = now
			d.redraw(ctx, online, first)
			first = false
		}
		if err := d.out.err(); err != nil {
			fmt.Fprintf(d.errw, "demo: output: %v; stopping\n", err)
			return true
		}
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
		}
	}
}

// cutWAN takes the first WAN away as the mode says.
func (d *demo) cutWAN() {
	w := d.b.TB.WANs[0]
	var err error
	switch d.tl.Mode {
	case cutCarrier:
		err = d.b.TB.CutCarrier(0)
		d.note("cut %s's carrier: the ISP's end of %s is down, the router sees NO-CARRIER (a pulled cable)", w.Name, w.Dev)
	case cutUpstream:
		err = d.b.TB.CutUpstream(0)
		d.note("cut %s's upstream: its ISP drops everything, the link stays up (only probes can tell)", w.Name)
	}
	if err != nil {
		d.note("cut failed: %v", err)
	}
	d.mu.Lock()
	d.obs.cut(d.now())
	d.mu.Unlock()
}

// restoreWAN gives the first WAN back.
func (d *demo) restoreWAN() {
	w := d.b.TB.WANs[0]
	err := d.b.TB.Restore(0)
	d.note("restored %s: link up, nothing dropped", w.Name)
	if err != nil {
		d.note("restore failed: %v", err)
	}
	d.mu.Lock()
	d.obs.restore(d.now())
	d.mu.Unlock()
}

// generate opens new connections of family f from the LAN client until
// ctx ends, recording which WAN carried each.
func (d *demo) generate(ctx context.Context, f int) {
	fam := testbed.IPv4
	if f == fam6 {
		fam = testbed.IPv6
	}
	t := time.NewTicker(flowEvery)
	defer t.Stop()
	for {
		// Flows count from their start: one that began before a change
		// says nothing about the state after it, however late it ends.
		started := d.now()
		wans, err := d.b.TB.TCPFlows(d.b.TB.LAN, flowBatch, fam, 0)
		d.mu.Lock()
		if err != nil {
			d.events.add(event{At: d.now(), Source: srcDemo, Text: fmt.Sprintf("%s flows: %v", famName(f), err)})
		}
		for _, w := range wans {
			fl := flow{At: started, Family: f, WAN: w}
			d.flows.add(fl)
			d.obs.flow(fl)
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe is the demo's own quality probe: every second, a few pings from
// the router to each WAN's gateway.
func (d *demo) probe(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, r := range d.rows {
			w := d.b.TB.WANs[r.WAN]
			gw := w.Gateway4
			if r.Family == fam6 {
				gw = w.Gateway6
			}
			res, err := d.b.TB.Router.Ping(gw, ownPings, 20*time.Millisecond, 250*time.Millisecond)
			sent := res.Sent
			if err != nil {
				sent = ownPings // could not even send: all lost
			}
			d.mu.Lock()
			pw := d.own[r.Name]
			if pw == nil {
				pw = newPingWindow(ownWindow)
				d.own[r.Name] = pw
			}
			pw.add(res.RTTs, sent)
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redraw asks the daemon for its status and prints a snapshot.
func (d *demo) redraw(ctx context.Context, online time.Duration, first bool) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	rep, err := d.b.Call(cctx, "status", ubus.Table{{Name: "section", Value: "interfaces"}})
	cancel()
	var st map[string]ifaceStatus
	if err == nil {
		st, err = parseStatus(rep)
	}
	now := d.now()
	d.mu.Lock()
	v := view{Now: now, End: online + d.tl.Duration, Phase: d.phase(now - online), Window: d.o.Window,
		Tallies: d.flows.tallies(now, d.o.Window, len(d.b.TB.WANs))}
	for _, r := range d.rows {
		s, ok := st[r.Name]
		r.Known, r.Status = ok, s
		if d.source == qualityDaemon {
			r.Quality = s.Quality
		} else if pw := d.own[r.Name]; pw != nil {
			r.Quality = pw.quality()
		}
		v.Rows = append(v.Rows, r)
	}
	if err != nil {
		v.Legend = append(v.Legend, "status call failed: "+err.Error())
	}
	if d.tty || first {
		v.Legend = append(v.Legend, d.legend()...)
	}
	if d.tty {
		v.EventsTitle, v.Events = fmt.Sprintf("events (latest %d):", ttyEvents), d.events.last(ttyEvents)
	} else {
		var seen int
		v.Events, seen = d.events.since(d.shown)
		d.shown = seen
		if len(v.Events) > 0 {
			v.EventsTitle = "events:"
		}
	}
	text, height := frame(render(v), d.tty, d.height, d.width())
	d.height = height
	d.mu.Unlock()
	fmt.Fprint(d.out, text)
}

// legend explains the columns.
func (d *demo) legend() []string {
	q := []string{"LATENCY, JITTER, LOSS: the daemon's rolling window over its track_ip probes (ubus status",
		"  rtt_avg_ms, jitter_ms, loss_window; averaged over the targets probed)"}
	if d.source == qualityDemo {
		q = []string{fmt.Sprintf("LATENCY, JITTER, LOSS: the demo's own pings from the router to each WAN's gateway (%d a second,", ownPings),
			fmt.Sprintf("  over the last %d)", ownWindow)}
	} else if d.tl.Mode == cutCarrier {
		q = append(q, "  (a WAN without carrier is not probed: its figures age out of the window)")
	}
	return append(q,
		fmt.Sprintf("NEW CONNECTIONS: TCP connections the LAN client opens to the internet host (%d every %s per family),",
			flowBatch, fmtDuration(flowEvery)),
		"  counted by the WAN the host saw them come from")
}

// phase says what is going on at now (from all online). d.mu is held.
func (d *demo) phase(now time.Duration) string {
	cut, other := d.cut[0], testbed.WANName(1)
	o := d.obs
	left := func(at time.Duration) string { return fmtDuration((at - now).Round(time.Second)) }
	switch {
	case o.cutAt < 0:
		return fmt.Sprintf("balancing over both WANs; cutting %s in %s", cut, left(d.tl.CutAfter))
	case o.restoreAt < 0 && o.down[fam4] < 0 && d.tl.Mode == cutUpstream:
		return fmt.Sprintf("%s's upstream cut: its new connections fail until the tracker has seen enough failed rounds (within %s)",
			cut, fmtDuration(d.tl.Detect))
	case o.restoreAt < 0 && o.down[fam4] < 0:
		return fmt.Sprintf("%s cut: waiting for the daemon to notice", cut)
	case o.restoreAt < 0:
		return fmt.Sprintf("FAILOVER: %s offline, new connections go to %s; restoring %s in %s", cut, other, cut, left(d.tl.restoreAt()))
	case o.up[fam4] < 0:
		return fmt.Sprintf("%s restored: the tracker wants good rounds before it trusts it again", cut)
	}
	return fmt.Sprintf("FAILBACK: %s online again, balancing over both; the end in %s", cut, left(d.tl.Duration))
}

// teardown removes everything and checks that nothing is left: the
// namespaces, the daemon's process, the bed's directories.
func (d *demo) teardown() error {
	b := d.b
	var paths []string
	for _, n := range []*testbed.NS{b.TB.Router, b.TB.LAN, b.TB.Internet} {
		paths = append(paths, n.Path())
	}
	for _, w := range b.TB.WANs {
		paths = append(paths, w.ISP.Path())
	}
	nsCount := len(paths)
	paths = append(paths, b.Dir)
	if b.Broker != nil {
		paths = append(paths, filepath.Dir(b.Broker.Path()))
	}
	closeErr := b.Close()
	var left []string
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			left = append(left, p)
		}
	}
	if d.pid > 0 {
		if err := syscall.Kill(d.pid, 0); !errors.Is(err, syscall.ESRCH) {
			left = append(left, fmt.Sprintf("process %d (mwan3d)", d.pid))
		}
	}
	if len(left) > 0 {
		return errors.Join(closeErr, fmt.Errorf("teardown left behind: %s", strings.Join(left, ", ")))
	}
	what := fmt.Sprintf("%d network namespaces and %d directories removed", nsCount, len(paths)-nsCount)
	if d.pid > 0 {
		what += fmt.Sprintf(", mwan3d (pid %d) stopped", d.pid)
	}
	fmt.Fprintf(d.out, "teardown: %s; nothing left\n", what)
	return closeErr
}
