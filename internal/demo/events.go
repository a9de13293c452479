package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// Sources of the event lines.
const (
	srcDaemon = "mwan3d" // the daemon's mwan3.interface ubus events
	srcDemo   = "demo"   // the demo's own actions
)

// event is one line of the event log.
type event struct {
	At     time.Duration // since the start of the demo
	Source string
	Text   string
}

// String formats the event as the log shows it.
func (e event) String() string {
	return fmt.Sprintf("%9s  %-6s  %s", "+"+fmtSeconds(e.At), e.Source, e.Text)
}

// fmtSeconds formats a time since the start with millisecond precision.
func fmtSeconds(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// maxEvents bounds the event log.
const maxEvents = 256

// eventLog keeps the latest events; Seq numbers them all, so that a
// reader can ask for the ones after those it has seen.
type eventLog struct {
	events []event
	seq    int // events ever added
}

// add appends an event.
func (l *eventLog) add(e event) {
	l.events = append(l.events, e)
	l.seq++
	if over := len(l.events) - maxEvents; over > 0 {
		l.events = append(l.events[:0], l.events[over:]...)
	}
}

// since returns the events added after the first seen ones (the oldest
// may be gone) and the new count to pass next time.
func (l *eventLog) since(seen int) ([]event, int) {
	first := l.seq - len(l.events) // sequence number of events[0]
	from := max(seen-first, 0)
	if from > len(l.events) {
		from = len(l.events)
	}
	return append([]event(nil), l.events[from:]...), l.seq
}

// last returns the latest n events.
func (l *eventLog) last(n int) []event {
	from := max(len(l.events)-n, 0)
	return append([]event(nil), l.events[from:]...)
}

// ifaceEvent is a decoded mwan3.interface event.
type ifaceEvent struct {
	Interface, Device, Action, Status string
	Online                            bool
}

// parseIfaceEvent decodes the data of an mwan3.interface event.
func parseIfaceEvent(data ubus.Table) (ifaceEvent, error) {
	var e ifaceEvent
	var ok bool
	if e.Interface, ok = data.GetString("interface"); !ok || e.Interface == "" {
		return e, fmt.Errorf("mwan3.interface event without an interface: %s", data)
	}
	if e.Action, ok = data.GetString("action"); !ok || e.Action == "" {
		return e, fmt.Errorf("mwan3.interface event without an action: %s", data)
	}
	e.Device, _ = data.GetString("device")
	e.Status, _ = data.GetString("status")
	e.Online, _ = data.GetBool("online")
	return e, nil
}

// String describes the event for the log.
func (e ifaceEvent) String() string {
	var b strings.Builder
	b.WriteString(e.Interface + " " + e.Action)
	if e.Device != "" {
		b.WriteString(" (" + e.Device + ")")
	}
	if e.Status != "" {
		b.WriteString(": status " + e.Status)
	}
	if e.Online {
		b.WriteString(", in the policies")
	} else {
		b.WriteString(", out of the policies")
	}
	return b.String()
}
