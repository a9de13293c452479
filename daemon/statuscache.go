package daemon

import (
	"slices"
	"sync"

	"github.com/mwan3d/mwan3d/ubus"
)

// statusCache holds the encoded answers of `status` for one snapshot: one
// published view and one state of the interfaces as status shows them
// (trackers' counters, the seconds since ..., netifd's uptime). Every
// call builds the snapshot, which is cheap, and encodes the answer only
// when the snapshot differs from the cached one: with LuCI and exporters
// polling, most calls within a second find the bytes ready.
type statusCache struct {
	v      *view
	ifaces []IfaceSnapshot

	mu      sync.Mutex
	replies map[statusKey]ubus.Encoded
}

// statusKey is one form of the call: the section (normalized) and the
// interface filter.
type statusKey struct {
	section string
	iface   string
	filter  bool
}

// statusReply answers status {section, interface} (spec §7.2) from the
// cache, encoding it when the state changed.
func (d *daemon) statusReply(section, iface string, filter bool) (ubus.Encoded, error) {
	v := d.view.Load()
	s := d.snapshot(v)
	switch section {
	case "interfaces", "connected", "policies":
	default:
		section = ""
	}
	if filter && section != "" && section != "interfaces" {
		iface, filter = "", false // the filter applies to interfaces only
	}
	key := statusKey{section, iface, filter}
	// Unknown names are answered but not cached: callers choose them.
	cacheable := !filter || v.cfg.Interface(iface) != nil
	c := d.status.Load()
	if c == nil || c.v != v || !slices.EqualFunc(c.ifaces, s.Interfaces, sameIface) {
		c = &statusCache{v: v, ifaces: s.Interfaces, replies: map[statusKey]ubus.Encoded{}}
		d.status.Store(c)
	}
	if cacheable {
		c.mu.Lock()
		r, ok := c.replies[key]
		c.mu.Unlock()
		if ok {
			return r, nil
		}
	}
	b, err := ubus.AppendTable(nil, s.StatusReply(section, iface, filter))
	if err != nil {
		return nil, err
	}
	if cacheable {
		c.mu.Lock()
		c.replies[key] = b
		c.mu.Unlock()
	}
	return b, nil
}

// sameIface tells whether two interface snapshots give the same reply
// (every field of IfaceSnapshot).
func sameIface(a, b IfaceSnapshot) bool {
	return a.Name == b.Name && a.Enabled == b.Enabled && a.Up == b.Up && a.Uptime == b.Uptime &&
		a.Status == b.Status && a.Tracking == b.Tracking && a.Age == b.Age && a.Online == b.Online &&
		a.Offline == b.Offline && a.Score == b.Score && a.Lost == b.Lost && a.Turn == b.Turn &&
		slices.Equal(a.Targets, b.Targets)
}
