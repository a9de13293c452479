package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// row is one interface of the status table.
type row struct {
	Name, Device string
	Family       int // fam4 or fam6
	WAN          int // testbed WAN index
	Known        bool
	Status       ifaceStatus // from the daemon, when Known
	Quality      quality     // from the daemon or the demo's own pings
}

// view is everything one snapshot shows.
type view struct {
	Now, End time.Duration // since the start of the demo
	Phase    string        // what is going on, one line
	Rows     []row
	Tallies  [numFamilies]tally
	Window   time.Duration // of the tallies
	// Events are the event lines to show under EventsTitle.
	EventsTitle string
	Events      []event
	// Legend explains the columns; shown when not empty.
	Legend []string
}

// barWidth is the width of the share bars.
const barWidth = 20

// render draws a snapshot as plain text lines.
func render(v view) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mwan3d demo  +%s of %s   %s\n\n", fmtTenths(v.Now), fmtDuration(v.End), v.Phase)
	fmt.Fprintf(&b, "%-10s %-7s %-14s %6s %9s %9s %5s  %s\n", "INTERFACE", "DEVICE", "STATUS", "SINCE", "LATENCY", "JITTER", "LOSS",
		"NEW CONNECTIONS, LAST "+fmtDuration(v.Window))
	for _, r := range v.Rows {
		status, since := "?", "-"
		if r.Known {
			status = r.Status.Status
			switch {
			case r.Status.Online > 0:
				since = fmtDuration(r.Status.Online)
			case r.Status.Offline > 0:
				since = fmtDuration(r.Status.Offline)
			}
			if !r.Status.Up {
				status += " (down)"
			}
		}
		lat, jit, loss := "-", "-", "-"
		if r.Quality.Valid {
			loss = fmt.Sprintf("%.0f%%", 100*r.Quality.Loss)
			if r.Quality.Loss < 1 {
				lat, jit = fmtMillis(r.Quality.RTT), fmtMillis(r.Quality.Jitter)
			}
		}
		t := v.Tallies[r.Family]
		share := "-"
		if t.Total() > 0 {
			s := t.Share(r.WAN)
			share = fmt.Sprintf("%4d %4.0f%% %s", t.PerWAN[r.WAN], 100*s, bar(s))
		}
		fmt.Fprintf(&b, "%-10s %-7s %-14s %6s %9s %9s %5s  %s\n", r.Name, r.Device, status, since, lat, jit, loss, share)
	}
	var fams []string
	for f := range numFamilies {
		t := v.Tallies[f]
		fams = append(fams, fmt.Sprintf("%s %d new connections, %d failed", famName(f), t.Total(), t.Failed))
	}
	fmt.Fprintf(&b, "%-10s %s\n", "", strings.Join(fams, "; "))
	if len(v.Legend) > 0 {
		b.WriteString("\n")
	}
	for _, l := range v.Legend {
		b.WriteString(l + "\n")
	}
	if v.EventsTitle != "" {
		b.WriteString("\n" + v.EventsTitle + "\n")
	}
	for _, e := range v.Events {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

// bar draws a share 0..1 as a bar of barWidth characters.
func bar(share float64) string {
	n := int(math.Round(min(max(share, 0), 1) * barWidth))
	return strings.Repeat("#", n) + strings.Repeat(".", barWidth-n)
}

// fmtTenths formats a time since the start to a tenth of a second.
func fmtTenths(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// fmtMillis formats a latency with three significant digits or so.
func fmtMillis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

// ANSI sequences for the terminal mode.
const (
	ansiClearLine = "\x1b[K" // erase to the end of the line
	ansiClearDown = "\x1b[J" // erase to the end of the screen
)

// ansiUp moves the cursor to the start of the line n lines up.
func ansiUp(n int) string { return fmt.Sprintf("\x1b[%dF", n) }

// frame wraps a snapshot for the output. On a terminal it redraws the
// previous snapshot, prev lines tall, in place (the lines above it, such as
// the introduction, stay): cursor up, each line cut to width columns (when
// width > 0, so that none wraps) and cleared to its end, the rest of the
// screen cleared. Otherwise it appends the snapshot after a blank line, so
// that logs read top to bottom. It also returns the height of the
// snapshot, for the next call.
func frame(text string, tty bool, prev, width int) (string, int) {
	text = strings.TrimSuffix(text, "\n")
	lines := strings.Count(text, "\n") + 1
	if !tty {
		return "\n" + text + "\n", lines
	}
	var b strings.Builder
	if prev > 0 {
		b.WriteString(ansiUp(prev))
	}
	for l := range strings.SplitSeq(text, "\n") {
		if r := []rune(l); width > 0 && len(r) > width {
			l = string(r[:width])
		}
		b.WriteString(l + ansiClearLine + "\n")
	}
	b.WriteString(ansiClearDown)
	return b.String(), lines
}
