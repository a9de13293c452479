package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mwan3d/mwan3d/config"
)

// Cut modes: how the demo takes wan away.
const (
	// cutCarrier sets the ISP's end of wan's link down: the router's
	// device loses its carrier, as when the cable is pulled. The daemon
	// takes wan (and wan6, on the same device) offline at once.
	cutCarrier = "carrier"
	// cutUpstream makes wan's ISP drop everything while the link stays up:
	// only the tracker's failing probes reveal it.
	cutUpstream = "upstream"
)

// linkwatchDelay is how late the kernel may report a carrier change
// (linkwatch batches them for up to a second).
const linkwatchDelay = time.Second

// timeline is when the demo does what, from the moment every interface is
// online, and how long the daemon should take, from the configuration.
type timeline struct {
	Mode     string
	CutAfter time.Duration // cut wan this long after all are online
	Outage   time.Duration // restore it this long after the cut
	Detect   time.Duration // expected time from the cut to wan offline (upper bound)
	Failback time.Duration // expected time from the restore to wan online (upper bound)
	Tail     time.Duration // shown after the expected failback
	Duration time.Duration // the whole run from all online
	// Short is set when the duration was given and ends before the
	// expected failback (or before the cut).
	Short bool
}

// restoreAt is when wan comes back, from all online.
func (tl timeline) restoreAt() time.Duration { return tl.CutAfter + tl.Outage }

// minOutage is the least time the demo leaves wan cut once it is offline,
// so that the traffic on wanb alone can be seen.
const minOutage = 10 * time.Second

// defaultTail is how long the demo goes on after the expected failback.
const defaultTail = 10 * time.Second

// planTimeline computes the timeline for cutting the interfaces cut (wan
// and wan6: both on the cut device) in mode; zero outage and duration are
// computed: the outage lasts until wan has been offline for minOutage, the
// duration until defaultTail after the expected failback.
func planTimeline(cut []*config.Interface, mode string, cutAfter, outage, duration time.Duration) (timeline, error) {
	tl := timeline{Mode: mode, CutAfter: cutAfter, Tail: defaultTail}
	if len(cut) == 0 {
		return tl, fmt.Errorf("timeline: no interface to cut")
	}
	for _, i := range cut {
		d, f, err := expected(i, mode)
		if err != nil {
			return tl, err
		}
		tl.Detect, tl.Failback = max(tl.Detect, d), max(tl.Failback, f)
	}
	tl.Outage = outage
	if tl.Outage == 0 {
		tl.Outage = tl.Detect + minOutage
	}
	need := tl.restoreAt() + tl.Failback + tl.Tail
	tl.Duration = duration
	if tl.Duration == 0 {
		tl.Duration = need
	}
	tl.Short = tl.Duration < tl.restoreAt()+tl.Failback
	return tl, nil
}

// expected returns the upper bounds of the detection and failback times of
// one tracked interface for a cut in mode (spec §5.5, track's timing): a
// failed round lasts (count−1)·1 s + timeout; going offline takes down
// failed rounds with failure_interval between them, plus the phase of the
// cut within the pause; coming back takes up successful rounds with
// recovery_interval between them. Carrier loss takes the interface offline
// at once and carrier back starts a round at once.
func expected(i *config.Interface, mode string) (detect, failback time.Duration, err error) {
	if !i.Tracked() {
		return 0, 0, fmt.Errorf("timeline: interface %s is not tracked", i.Name)
	}
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	failedRound := sec(i.Count-1) + sec(i.Timeout)
	rising := time.Duration(i.Up-1) * sec(i.RecoveryInterval)
	switch mode {
	case cutCarrier:
		return linkwatchDelay, linkwatchDelay + rising, nil
	case cutUpstream:
		pause := max(i.Interval, i.FailureInterval)
		detect = sec(i.Interval) + time.Duration(i.Down)*failedRound + time.Duration(i.Down-1)*sec(i.FailureInterval)
		// The round in flight at the restore may still fail; then the
		// pause, then up good rounds.
		return detect, failedRound + sec(pause) + rising, nil
	}
	return 0, 0, fmt.Errorf("timeline: cut mode %q: want %s or %s", mode, cutCarrier, cutUpstream)
}

// describe explains the timeline in a few lines for the start of the demo.
func (tl timeline) describe(cutNames string, cut *config.Interface) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tracking %s: a round every %d s, offline after %d failed rounds, online after %d good ones (timeout %d s, %d probe(s) per target)\n",
		cut.Name, cut.Interval, cut.Down, cut.Up, cut.Timeout, cut.Count)
	b.WriteString("timeline, from the moment every interface is online:\n")
	at := func(d time.Duration) string { return "  " + fmtDuration(d) + ":" }
	switch tl.Mode {
	case cutCarrier:
		fmt.Fprintf(&b, "%-9s cut wan's carrier (as if its cable were pulled): the daemon sees the link go down and takes %s\n",
			at(tl.CutAfter), cutNames)
		fmt.Fprintf(&b, "%-9s offline at once (within %s); new connections move to the other WAN\n", "", fmtDuration(tl.Detect))
	case cutUpstream:
		fmt.Fprintf(&b, "%-9s cut wan's upstream (the ISP drops everything, the link stays up): only the tracker's failing\n", at(tl.CutAfter))
		fmt.Fprintf(&b, "%-9s probes reveal it; %s go offline within %s, then new connections move to the other WAN\n", "", cutNames, fmtDuration(tl.Detect))
	}
	fmt.Fprintf(&b, "%-9s restore wan: failback needs %d good rounds %d s apart; %s go online again within %s\n",
		at(tl.restoreAt()), cut.Up, cut.RecoveryInterval, cutNames, fmtDuration(tl.Failback))
	fmt.Fprintf(&b, "%-9s the end (-duration), or earlier on Ctrl-C; everything is torn down\n", at(tl.Duration))
	if tl.Short {
		fmt.Fprintf(&b, "note: -duration %s ends before the expected failback (%s)\n",
			fmtDuration(tl.Duration), fmtDuration(tl.restoreAt()+tl.Failback))
	}
	return b.String()
}

// fmtDuration formats a duration for humans at a precision that suits it:
// 850ms, 4.2s, 41s, 1m05s, 1h02m.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDuration(-d)
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second && d%time.Second != 0:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
