package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
	"github.com/mwan3d/mwan3d/ubus"
)

// applyRetry is the delay before a failed nft apply is tried again.
const applyRetry = 2 * time.Second

// maxBurst bounds the inputs handled before the state is applied.
const maxBurst = 256

// loop is the daemon: one goroutine that owns all state. It handles a
// burst of inputs, then brings the kernel to the desired state and
// announces the transitions, until ctx ends.
func (d *daemon) loop(ctx context.Context) {
	defer close(d.done)
	startup := time.NewTimer(d.opts.StartupWait)
	defer startup.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	closed := make(chan struct{})
	close(closed)
	for {
		// Block for the first input of a burst, then take what else is
		// ready without blocking.
		if !d.next(ctx, nil, startup.C, retry.C) {
			return
		}
		for range maxBurst {
			if !d.next(ctx, closed, startup.C, retry.C) {
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !d.reconcile() {
			retry.Reset(applyRetry)
		}
	}
}

// next handles one input. With idle closed it returns false when nothing
// is ready; it also returns false when ctx ends.
func (d *daemon) next(ctx context.Context, idle <-chan struct{}, startup, retry <-chan time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-idle:
		return false
	case <-startup:
		if !d.netifdSynced || !d.routesSynced {
			d.log.Warn("netifd or the route sync did not answer in time; applying the ruleset anyway",
				"netifd", d.netifdSynced, "routes", d.routesSynced)
		}
		d.netifdSynced, d.routesSynced = true, true
	case <-retry:
		d.nftDirty = true
	case <-d.opts.Reload:
		d.reload()
	case in := <-d.netifdCh:
		d.onNetifd(in)
	case ev, ok := <-d.k.Trackers.Events():
		if ok {
			d.onTracker(ev)
		}
	case <-d.swept:
		d.legacySwept = true
		d.swept = nil // closed: never again
	case r := <-d.k.Routes.Results():
		d.onRoutes(r)
	case lc := <-d.k.Routes.LinkChanges():
		d.k.Trackers.Carrier(lc.Name, !lc.Deleted && lc.Up && lc.Carrier)
	case req := <-d.reqCh:
		d.onRequest(req)
	}
	return true
}

// reconcile brings the kernel to the desired state and announces what
// happened. It returns false when the nft apply failed (to be retried).
func (d *daemon) reconcile() bool {
	ok := true
	if !d.netifdSynced {
		// Applying before netifd's view is known would take every
		// interface out of the policies, and drop an adopted state.
		d.publish()
		return true
	}
	in := rtInput(d.cfg, d.ifaces, d.k.NoIPv6)
	if d.lastRT == nil || !rtInputEqual(*d.lastRT, in) {
		d.k.Routes.SetInput(in)
		d.lastRT = &in
	}
	if !d.routesSynced || !d.legacySwept {
		// The connected networks come with the first route result;
		// legacy's iptables marks are gone before ours apply.
		d.publish()
		return true
	}
	d.syncTrackers()
	if d.nftDirty || d.plan == nil {
		ok = d.applyNFT()
	}
	if ok && !d.running {
		d.started()
	}
	d.kickTrackers()
	d.writeIfaceStates()
	// Published before anything is announced: whoever reacts to an event
	// or an answer reads the new state.
	d.publish()
	d.flushEvents()
	for _, r := range d.replies {
		r()
	}
	d.replies = nil
	return ok
}

// applyNFT renders the ruleset and applies it.
func (d *daemon) applyNFT() bool {
	in, warns := nftInput(d.cfg, d.ifaces, d.srcDevice, d.conn4, d.k.NoIPv6)
	in.Uses = d.cg.sync(d.cfg)
	plan, err := nft.Render(in)
	if err != nil {
		d.log.Error("render ruleset", "err", err)
		return false
	}
	d.logWarnings(append(warns, plan.Warnings...))
	if err := d.k.NFT.Apply(plan); err != nil {
		d.log.Error(fmt.Sprintf("nft apply (%s): %v", nft.TableName, err))
		return false
	}
	d.plan, d.input = plan, in
	d.nftDirty = false
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		if err := nft.WriteDump(filepath.Join(d.statusDir, "nft.dump"), plan); err != nil {
			d.log.Debug("write nft dump", "err", err)
		}
	}
	return true
}

// logWarnings logs the render warnings that are new since the last plan,
// so that a rule skipped for a while is not reported at every apply.
func (d *daemon) logWarnings(ws []string) {
	now := make(map[string]bool, len(ws))
	for _, w := range ws {
		if !d.lastWarn[w] {
			d.log.Warn(w)
		}
		now[w] = true
	}
	d.lastWarn = now
}

// started runs once, after the first successful apply: the state is up.
func (d *daemon) started() {
	d.running = true
	if err := os.MkdirAll(filepath.Join(d.statusDir, "iface_state"), 0o755); err != nil {
		d.log.Error("create state directory", "err", err)
	}
	mask := fmt.Sprintf("0x%x\n", d.cfg.Globals.MMXMask)
	if err := os.WriteFile(filepath.Join(d.statusDir, "mmx_mask"), []byte(mask), 0o644); err != nil {
		d.log.Warn("write mmx_mask", "err", err)
	}
	d.publish()
	d.registerObject()
	d.log.Info("started", "interfaces", len(d.cfg.Interfaces))
}

// writeIfaceStates keeps legacy's iface_state files (online/offline).
func (d *daemon) writeIfaceStates() {
	if !d.running {
		return
	}
	dir := filepath.Join(d.statusDir, "iface_state")
	for _, i := range d.cfg.Interfaces {
		path := filepath.Join(dir, i.Name)
		s := d.ifaces[i.Name]
		want := ""
		switch {
		case s == nil || !i.Enabled:
		case s.online:
			want = "online\n"
		default:
			want = "offline\n"
		}
		if d.ifaceFiles[i.Name] == want {
			continue
		}
		var err error
		if want == "" {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, []byte(want), 0o644)
		}
		if err != nil && !os.IsNotExist(err) {
			d.log.Debug("write iface_state", "err", err)
			continue
		}
		d.ifaceFiles[i.Name] = want
	}
}

// state returns the run-time state of an enabled interface, nil for
// others.
func (d *daemon) state(name string) (*config.Interface, *ifaceState) {
	i := d.cfg.Interface(name)
	if i == nil || !i.Enabled {
		return i, nil
	}
	s := d.ifaces[name]
	if s == nil {
		s = &ifaceState{}
		d.ifaces[name] = s
	}
	return i, s
}

// trueIface is the netifd interface carrying an mwan3 interface's
// addresses: <name>_4 or <name>_6 when netifd has it (spec §5.2, §10.3).
func (d *daemon) trueIface(i *config.Interface) string {
	child := i.Name + "_4"
	if i.Family == config.IPv6 {
		child = i.Name + "_6"
	}
	if _, ok := d.netifd[child]; ok {
		return child
	}
	return i.Name
}

// netifdUp tells whether netifd reports the interface up with an L3
// device, and which: the interface's own, else its true interface's.
func (d *daemon) netifdUp(i *config.Interface) (bool, string) {
	for _, n := range []string{i.Name, d.trueIface(i)} {
		if e, ok := d.netifd[n]; ok && e.Up && e.L3Device != "" {
			return true, e.L3Device
		}
	}
	return false, ""
}

// srcDevice is the L3 device of any netifd interface that is up, for
// rules with src_iface.
func (d *daemon) srcDevice(name string) string {
	if e, ok := d.netifd[name]; ok && e.Up {
		return e.L3Device
	}
	return ""
}

// affected lists the enabled or disabled mwan3 interfaces that a netifd
// interface belongs to: itself, or its _4/_6 child.
func (d *daemon) affected(name string) []*config.Interface {
	var out []*config.Interface
	for _, i := range d.cfg.Interfaces {
		if name == i.Name || (i.Family == config.IPv4 && name == i.Name+"_4") || (i.Family == config.IPv6 && name == i.Name+"_6") {
			out = append(out, i)
		}
	}
	return out
}

// usedAsSrcIface tells whether some rule matches on the netifd interface.
func (d *daemon) usedAsSrcIface(name string) bool {
	return slices.ContainsFunc(d.cfg.Rules, func(r *config.Rule) bool { return r.SrcIface == name })
}

func (d *daemon) onNetifd(in netifdInput) {
	if in.kind == netifdDump {
		first := !d.netifdSynced
		d.netifdSynced = true
		if in.absent {
			return
		}
		m := make(map[string]netifdEntry, len(in.dump))
		for _, s := range in.dump {
			m[s.Interface] = netifdEntry{NetifdInterface: s, at: in.at}
		}
		d.netifd = m
		for _, i := range d.cfg.Interfaces {
			d.refresh(i, netifdDump, false, first)
		}
		d.nftDirty = true
		return
	}
	if in.known {
		in.status.Interface = in.name
		d.netifd[in.name] = netifdEntry{NetifdInterface: in.status, at: in.at}
	} else {
		delete(d.netifd, in.name)
	}
	if d.usedAsSrcIface(in.name) {
		d.nftDirty = true
	}
	ifs := d.affected(in.name)
	if len(ifs) == 0 {
		if in.kind == netifdIfUp || in.kind == netifdIfDown {
			d.hlog.Info(fmt.Sprintf("mwan3 hotplug on %s not called because interface disabled", in.name))
		}
		return
	}
	for _, i := range ifs {
		d.refresh(i, in.kind, in.name == i.Name, false)
	}
}

// refresh brings one mwan3 interface in line with netifd's view after an
// input of the given kind; direct is set when the input was about the
// interface itself (not its _4/_6 child). quiet suppresses the user hook
// of an ifup (daemon start-up and reload, as legacy's init did).
func (d *daemon) refresh(i *config.Interface, kind netifdKind, direct, quiet bool) {
	i, s := d.state(i.Name)
	if s == nil {
		if direct && (kind == netifdIfUp || kind == netifdIfDown) {
			d.hlog.Info(fmt.Sprintf("mwan3 hotplug on %s not called because interface disabled", i.Name))
		}
		return
	}
	up, dev := d.netifdUp(i)
	if kind == netifdUpFailed && direct {
		// Legacy's 15-mwan3 ignored it; 16-mwan3-user gave it to the
		// user script (spec §6.2, §6.4).
		d.log.Info("netifd could not bring the interface up", "interface", i.Name)
		d.pending = append(d.pending, outEvent{ev: HookEvent{Action: "ifup-failed", Interface: i.Name}, hook: true})
	}
	switch {
	case kind == netifdIfDown && direct:
		s.manualDown = false
		if s.up {
			d.ifdown(i, s, false)
		}
	case !up:
		if kind == netifdIfUp && direct {
			if e, ok := d.netifd[i.Name]; ok && e.Up {
				d.hlog.Info(fmt.Sprintf("ifup called on %s with no device set", i.Name))
			}
		}
		s.manualDown = false
		if s.up {
			d.ifdown(i, s, false)
		}
	case kind == netifdIfUp && direct && s.manualDown:
		s.manualDown = false
		d.ifup(i, s, dev, false)
	case s.manualDown:
	case !s.up:
		d.ifup(i, s, dev, quiet)
	case dev != s.device:
		// A new device without down/up (PPPoE reconnects give both).
		d.ifdown(i, s, false)
		d.ifup(i, s, dev, false)
	default:
		d.update(i, s)
	}
}

// ifup is legacy's ifup handling (spec §6.2 step 7, §6.3).
func (d *daemon) ifup(i *config.Interface, s *ifaceState, dev string, quiet bool) {
	s.up, s.device, s.manualDown = true, dev, false
	s.online = i.InitialState != "offline"
	if !s.online && i.Tracked() {
		if t, ok := d.k.Trackers.Status(i.Name); ok && t.Status == track.StatusOnline {
			s.online = true
		}
	}
	s.netifdSig = d.netifdSig(i)
	d.nftDirty = true
	d.hlog.Info(fmt.Sprintf("Execute ifup event on interface %s (%s)", i.Name, dev))
	if i.Tracked() {
		s.trackerPending = true
	}
	d.pending = append(d.pending, outEvent{ev: HookEvent{Action: "ifup", Interface: i.Name, Device: dev}, hook: !quiet, flush: hasFlush(i, "ifup")})
}

// ifdown is legacy's ifdown handling. manual marks `mwan3 ifdown`, whose
// own event does not reach the user script (spec §8.8).
func (d *daemon) ifdown(i *config.Interface, s *ifaceState, manual bool) {
	s.up, s.device, s.online = false, "", false
	d.nftDirty = true
	d.hlog.Info(fmt.Sprintf("Execute ifdown event on interface %s (unknown)", i.Name))
	if s.tracked && (s.trackerUp || s.trackerPending) {
		if err := d.k.Trackers.IfDown(i.Name); err != nil {
			d.log.Warn("tracker ifdown", "interface", i.Name, "err", err)
		}
	}
	s.trackerUp, s.trackerPending = false, false
	d.pending = append(d.pending, outEvent{ev: HookEvent{Action: "ifdown", Interface: i.Name}, hook: !manual, flush: hasFlush(i, "ifdown")})
}

// update handles a change of an up interface without down/up (netifd's
// ifupdate): new addresses or routes refresh the tracker's binding (spec
// §5.3.3 REC) and reach the user script as "ifupdate".
func (d *daemon) update(i *config.Interface, s *ifaceState) {
	sig := d.netifdSig(i)
	if sig == s.netifdSig {
		return
	}
	s.netifdSig = sig
	if s.trackerUp {
		if b := d.binding(i, s); b != s.binding {
			s.binding = b
			if err := d.k.Trackers.IfUpdate(i.Name, b); err != nil {
				d.log.Warn("tracker ifupdate", "interface", i.Name, "err", err)
			}
		}
	}
	d.pending = append(d.pending, outEvent{ev: HookEvent{Action: "ifupdate", Interface: i.Name, Device: s.device}, hook: true})
}

// netifdSig summarises what an ifupdate changes: the addresses, prefixes
// and routes of the interface and of its true interface.
func (d *daemon) netifdSig(i *config.Interface) string {
	var b strings.Builder
	for _, n := range []string{i.Name, d.trueIface(i)} {
		e := d.netifd[n]
		fmt.Fprintf(&b, "%s|%s|%v|%v|%v|%v|%v;", n, e.L3Device, e.IPv4, e.IPv6, e.IPv6Prefix, e.IPv6Assign, e.Routes)
	}
	return b.String()
}

// onTracker handles a tracker event (spec §5.7, §6.2, §6.3).
func (d *daemon) onTracker(ev track.Event) {
	i, s := d.state(ev.Interface)
	if s == nil || !s.tracked {
		return
	}
	flush := false
	switch ev.Action {
	case track.ActionConnected:
		if ev.FirstConnect {
			// The tracker's answer to the latest IfUp. A tracker's events
			// come in order, but the loop may read netifd's ifup before a
			// disconnected the tracker fired while it handled the ifdown
			// before it, which then took the interface out again; the
			// first connect comes after that stale event and puts back
			// what the ifup set (the tracker is online: ifup sets online
			// then, whatever initial_state). Otherwise it changes
			// nothing, as in legacy.
			if s.up && !s.online {
				s.online = true
				d.nftDirty = true
			}
			break
		}
		flush = hasFlush(i, "connected")
		d.hlog.Info(fmt.Sprintf("Execute connected event on interface %s (%s)", i.Name, orUnknown(ev.Device)))
		if s.up && !s.online {
			s.online = true
			d.nftDirty = true
		}
	case track.ActionDisconnected:
		flush = hasFlush(i, "disconnected")
		d.hlog.Info(fmt.Sprintf("Execute disconnected event on interface %s (%s)", i.Name, orUnknown(ev.Device)))
		if s.online {
			s.online = false
			d.nftDirty = true
		}
	}
	d.pending = append(d.pending, outEvent{ev: HookEvent{Action: string(ev.Action), Interface: i.Name, Device: ev.Device, FirstConnect: ev.FirstConnect}, hook: true, flush: flush})
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// onRoutes takes a route reconcile's result: the bypass networks for nft
// and the tables trackers wait for.
func (d *daemon) onRoutes(r rtsync.Result) {
	if r.Err != nil {
		if msg := r.Err.Error(); msg != d.lastRTErr {
			d.log.Warn("route sync: "+msg, "changes", r.Changes)
			d.lastRTErr = msg
		}
	} else {
		d.lastRTErr = ""
	}
	if r.State == nil {
		d.tablesAll = true
		return
	}
	d.routesSynced = true
	d.tablesAll = false
	clear(d.tables)
	for _, t := range r.State.Tables {
		d.tables[t.Interface] = true
	}
	if c := connectedOf(r.State); !c.equal(d.conn4) {
		d.conn4 = c
		d.nftDirty = true
	}
}

// syncTrackers starts a tracker for every tracked interface and applies
// changed options. New trackers start paused; kickTrackers sends the
// ifup once the interface's routes are in place.
func (d *daemon) syncTrackers() {
	for _, i := range d.cfg.Interfaces {
		_, s := d.state(i.Name)
		if s == nil || !i.Tracked() {
			continue
		}
		p := trackParams(i)
		switch {
		case !s.tracked:
			if err := d.k.Trackers.Start(i.Name, p, track.Binding{}, false); err != nil {
				d.log.Error("start tracker", "interface", i.Name, "err", err)
				continue
			}
			s.tracked, s.params = true, p
			s.trackerPending = s.up
		case !paramsEqual(p, s.params):
			if err := d.k.Trackers.Reconfigure(i.Name, p); err != nil {
				d.log.Error("reconfigure tracker", "interface", i.Name, "err", err)
				continue
			}
			s.params = p
		}
	}
}

// kickTrackers sends the pending ifups to trackers whose interface has its
// routing table: probes carry the interface's mark and are routed by it.
func (d *daemon) kickTrackers() {
	for _, i := range d.cfg.Interfaces {
		s := d.ifaces[i.Name]
		if s == nil || !s.tracked || !s.trackerPending || !s.up {
			continue
		}
		if !d.tablesAll && !d.tables[i.Name] {
			continue
		}
		b := d.binding(i, s)
		if err := d.k.Trackers.IfUp(i.Name, b); err != nil {
			d.log.Warn("tracker ifup", "interface", i.Name, "err", err)
			continue
		}
		s.binding, s.trackerPending, s.trackerUp = b, false, true
	}
}

// binding is what pins an interface's probes to it: the true interface's
// device and source address (spec §5.3.3) and the interface's mark.
func (d *daemon) binding(i *config.Interface, s *ifaceState) track.Binding {
	b := track.Binding{Device: s.device, Mark: config.Mark(d.cfg.Globals.MMXMask, uint32(i.ID))}
	ti := d.trueIface(i)
	e, ok := d.netifd[ti]
	if ok && e.Up && e.L3Device != "" {
		b.Device = e.L3Device
	}
	if ok {
		b.Source = e.Source(i.Family)
	}
	if !b.Source.IsValid() {
		b.Source = d.guessSource(i, ti, b.Device, e.NetifdInterface)
	}
	return b
}

// flushEvents announces the transitions of the burst, now that the state
// is applied: conntrack flushes, hooks, ubus events.
func (d *daemon) flushEvents() {
	for _, o := range d.pending {
		i := d.cfg.Interface(o.ev.Interface)
		s := d.ifaces[o.ev.Interface]
		if o.flush && i != nil {
			d.flushConntrack(i, o.ev.Action)
		}
		if o.hook {
			d.hooks.Deliver(o.ev)
		}
		online := s != nil && s.online
		d.pub.send(ifaceEvent(o.ev, d.statusOf(o.ev.Interface), online))
	}
	d.pending = d.pending[:0]
}

// flushConntrack deletes the interface's connections (spec §6.2 step 8,
// but only the entries carrying its mark, §10.24 REC).
func (d *daemon) flushConntrack(i *config.Interface, action string) {
	if d.k.FlushConntrack == nil {
		return
	}
	mask := d.cfg.Globals.MMXMask
	n, err := d.k.FlushConntrack(mask, config.Mark(mask, uint32(i.ID)))
	if err != nil {
		d.log.Warn("flush conntrack", "interface", i.Name, "err", err)
	}
	d.hlog.Info(fmt.Sprintf("Connection tracking flushed for interface '%s' on action '%s'", i.Name, action), "entries", n)
}

// statusOf is an interface's status as `mwan3 status` reports it.
func (d *daemon) statusOf(name string) string {
	if s, ok := d.k.Trackers.Status(name); ok && s.Status != track.StatusUnknown {
		return string(s.Status)
	}
	return "unknown"
}

// onRequest handles a ubus call that changes state; its answer is sent
// once the state is applied.
func (d *daemon) onRequest(r *request) {
	var res reqResult
	switch r.kind {
	case "reload":
		res.data = d.reload()
	case "ifup":
		res.err = d.manualIfup(r.iface)
	case "ifdown":
		res.err = d.manualIfdown(r.iface)
	case "use":
		res.data, res.err = d.useInfo(r.iface)
	}
	d.replies = append(d.replies, func() { r.reply <- res })
}

// reload re-reads the configuration; with errors the running one stays
// (spec §10.17: an in-place reconciling reload).
func (d *daemon) reload() reloadReply {
	cfg, diags, err := d.readConfig()
	rep := reloadReply{Errors: []string{}, Warnings: []string{}}
	if err != nil {
		d.log.Error("reload: " + err.Error())
		rep.Errors = append(rep.Errors, err.Error())
		return rep
	}
	d.logDiags(diags)
	for _, dg := range diags.Sorted() {
		if dg.Severity == config.Error {
			rep.Errors = append(rep.Errors, dg.Error())
		} else {
			rep.Warnings = append(rep.Warnings, dg.Error())
		}
	}
	if diags.HasErrors() {
		d.log.Error("reload refused, keeping the running configuration", "errors", len(rep.Errors))
		return rep
	}
	d.applyConfig(cfg)
	rep.Applied = true
	d.log.Info("reloaded", "config", d.opts.ConfigPath, "summary", cfg.Summary())
	return rep
}

// applyConfig switches to a new configuration, touching only what
// changed: trackers whose options are unchanged keep running.
func (d *daemon) applyConfig(cfg *config.Config) {
	old := d.cfg
	d.cfg = cfg
	oldStates := d.ifaces
	d.ifaces = map[string]*ifaceState{}
	for _, i := range cfg.Interfaces {
		s := oldStates[i.Name]
		oi := old.Interface(i.Name)
		if s == nil || !i.Enabled || oi == nil || oi.Family != i.Family {
			continue
		}
		d.ifaces[i.Name] = s
		delete(oldStates, i.Name)
		if s.tracked && !i.Tracked() {
			d.stopTracker(i.Name, s)
			// Without tracking the hotplug state follows ifup alone.
			s.online = s.up && i.InitialState != "offline"
		}
		if s.up && s.trackerUp {
			if b := d.binding(i, s); b != s.binding {
				s.binding = b
				if err := d.k.Trackers.IfUpdate(i.Name, b); err != nil {
					d.log.Warn("tracker ifupdate", "interface", i.Name, "err", err)
				}
			}
		}
	}
	for name, s := range oldStates {
		if s.tracked {
			d.stopTracker(name, s)
		}
	}
	for _, i := range cfg.Interfaces {
		d.refresh(i, netifdDump, false, true)
	}
	clear(d.lastWarn)
	d.nftDirty = true
}

func (d *daemon) stopTracker(name string, s *ifaceState) {
	if err := d.k.Trackers.Stop(name); err != nil {
		d.log.Warn("stop tracker", "interface", name, "err", err)
	}
	s.tracked, s.trackerUp, s.trackerPending = false, false, false
}

// ifaceError is a refused ifup or ifdown, with the ubus status to answer
// and legacy's message (spec §8.8).
type ifaceError struct {
	status ubus.Status
	msg    string
}

func (e *ifaceError) Error() string { return e.msg }

// manualIfup is `mwan3 ifup <iface>`: the ifup handling as if netifd had
// sent it, when netifd reports the interface up.
func (d *daemon) manualIfup(name string) error {
	i, s := d.state(name)
	if s == nil {
		return &ifaceError{ubus.StatusNotFound, fmt.Sprintf("%s is not an enabled mwan3 interface", name)}
	}
	up, dev := d.netifdUp(i)
	if !up {
		return &ifaceError{ubus.StatusNoData, fmt.Sprintf("The network interace '%s' is not up.", d.trueIface(i))}
	}
	d.ifup(i, s, dev, true)
	return nil
}

// manualIfdown is `mwan3 ifdown <iface>`: the ifdown handling; netifd's
// interface is not touched and mwan3 keeps it down until its next ifup.
func (d *daemon) manualIfdown(name string) error {
	i, s := d.state(name)
	if s == nil {
		return &ifaceError{ubus.StatusNotFound, fmt.Sprintf("%s is not an enabled mwan3 interface", name)}
	}
	s.manualDown = true
	if s.up {
		d.ifdown(i, s, true)
	} else if s.tracked {
		if err := d.k.Trackers.IfDown(i.Name); err != nil {
			d.log.Debug("tracker ifdown", "interface", i.Name, "err", err)
		}
	}
	return nil
}

// publish makes the current state visible to the ubus handlers.
func (d *daemon) publish() {
	v := &view{running: d.running, cfg: d.cfg, plan: d.plan, input: d.input, conn: d.conn4,
		ifaces: make(map[string]ifaceView, len(d.cfg.Interfaces))}
	for _, i := range d.cfg.Interfaces {
		iv := ifaceView{}
		if e, ok := d.netifd[i.Name]; ok && e.Up {
			iv.netifdUp, iv.uptime, iv.readAt = true, e.Uptime, e.at
		}
		if s := d.ifaces[i.Name]; s != nil {
			iv.up, iv.online, iv.device = s.up, s.online, s.device
		}
		v.ifaces[i.Name] = iv
	}
	v.derive()
	d.view.Store(v)
}
