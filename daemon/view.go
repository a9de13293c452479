package daemon

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/track"
)

// view is the immutable state the loop publishes after each burst. The
// ubus handlers read it (and the trackers' own immutable snapshots) and
// never touch the loop's state.
type view struct {
	running bool
	cfg     *config.Config
	plan    *nft.Plan  // the ruleset in force, nil before the first apply
	input   *nft.Input // what plan was rendered from
	conn    connectedNets
	ifaces  map[string]ifaceView
	// Derived from the above once (derive), for the status calls:
	// policies per family with their active members (spec §7.5), and the
	// connected networks as status lists them (§7.4).
	policies4, policies6 []PolicySnapshot
	connected            Connected
}

// ifaceView is one interface in a view.
type ifaceView struct {
	netifdUp bool      // netifd's "up" of the interface itself
	uptime   int64     // netifd's "uptime" when it was read
	readAt   time.Time // when netifd's status was read
	up       bool      // mwan3's ifup state
	online   bool      // hotplug state: in the policies
	device   string
}

// uptime returns the system uptime in whole seconds, as the tracker files
// record times.
func (d *daemon) uptime() int64 {
	if d.k.Uptime == nil {
		return 0
	}
	return int64(d.k.Uptime() / time.Second)
}

// snapshot builds the status of every interface from a published view
// and the trackers' snapshots, at the time of the call.
func (d *daemon) snapshot(v *view) *Snapshot {
	now := time.Now()
	up := d.uptime()
	since := func(t int64) int64 {
		if t <= 0 || up < t {
			return 0
		}
		return up - t
	}
	s := &Snapshot{Running: v.running, Interfaces: make([]IfaceSnapshot, 0, len(v.cfg.Interfaces))}
	n := 0
	for _, i := range v.cfg.Interfaces {
		n += len(i.TrackIP)
	}
	targets := make([]TargetSnapshot, 0, n) // one array for all interfaces
	for _, i := range v.cfg.Interfaces {
		iv := v.ifaces[i.Name]
		is := IfaceSnapshot{Name: i.Name, Enabled: i.Enabled, Up: iv.netifdUp, Status: "unknown", Tracking: string(track.TrackingDown)}
		if iv.netifdUp {
			is.Uptime = iv.uptime + int64(now.Sub(iv.readAt)/time.Second)
		}
		if len(i.TrackIP) == 0 {
			is.Tracking = string(track.TrackingDisabled)
		}
		var ts track.Snapshot
		ok := false
		if v.running && i.Tracked() {
			ts, ok = d.k.Trackers.Status(i.Name)
		}
		if ok {
			is.Tracking = string(ts.Tracking)
			if ts.Status != track.StatusUnknown {
				is.Status = string(ts.Status)
			}
			is.Score, is.Lost, is.Turn = ts.Score, ts.Lost, ts.Turn
			is.Age, is.Online, is.Offline = since(ts.Time), since(ts.Online), since(ts.Offline)
		}
		start := len(targets)
		for _, ip := range i.TrackIP {
			t := TargetSnapshot{IP: ip, Status: "unknown"}
			for _, tt := range ts.Targets {
				if tt.Target != ip {
					continue
				}
				if tt.State != "" {
					t.Status = string(tt.State)
				}
				t.Latency, t.PacketLoss = max(tt.Latency, 0), max(tt.Loss, 0)
				t.RTTAvgMs = float64(tt.Quality.RTTAvg) / float64(time.Millisecond)
				t.JitterMs = float64(tt.Quality.RTTStdDev) / float64(time.Millisecond)
				t.LossWindow = tt.Quality.LossPercent / 100
				break
			}
			targets = append(targets, t)
		}
		is.Targets = targets[start:len(targets):len(targets)]
		s.Interfaces = append(s.Interfaces, is)
	}
	if !v.running {
		return s
	}
	s.Connected = v.connected
	s.Policies4, s.Policies6 = v.policies4, v.policies6
	return s
}

// derive computes what status shows of the view: the active members of
// every policy, the connected networks.
func (v *view) derive() {
	v.connected = Connected{IPv4: statusList(v.conn.connected4), IPv6: statusList(v.conn.connected6)}
	online := func(name string) bool { return v.ifaces[name].online }
	for _, p := range v.cfg.Policies {
		v.policies4 = append(v.policies4, PolicySnapshot{Name: p.Name, LastResort: p.LastResort, Active: ActiveShares(v.cfg, p, config.IPv4, online)})
		v.policies6 = append(v.policies6, PolicySnapshot{Name: p.Name, LastResort: p.LastResort, Active: ActiveShares(v.cfg, p, config.IPv6, online)})
	}
}

// guessSource is legacy's fallback when netifd has no address for the
// true interface (spec §5.3.3): the first address of the family on the
// device; for IPv6 first an address of any device inside the interface's
// delegated prefix. Invalid when nothing fits (the kernel then chooses).
func (d *daemon) guessSource(i *config.Interface, trueName, dev string, n NetifdInterface) netip.Addr {
	fam := "ipv4"
	if i.Family == config.IPv6 {
		fam = "ipv6"
	}
	var addrs map[string][]netip.Prefix
	if d.k.DeviceAddrs != nil && dev != "" {
		addrs, _ = d.k.DeviceAddrs()
	}
	want := func(a netip.Addr) bool { return a.Is4() == (i.Family != config.IPv6) }
	if i.Family == config.IPv6 {
		for _, pfx := range n.IPv6Prefix {
			p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", pfx.Address, pfx.Mask))
			if err != nil {
				continue
			}
			for _, as := range addrs {
				for _, a := range as {
					if p.Contains(a.Addr()) {
						return d.guessed(fam, trueName, dev, a.Addr())
					}
				}
			}
		}
	}
	for _, a := range addrs[dev] {
		if want(a.Addr()) {
			return d.guessed(fam, trueName, dev, a.Addr())
		}
	}
	if dev != "" {
		d.log.Warn(fmt.Sprintf("no src %s address found for interface '%s' dev '%s'", fam, trueName, dev))
	}
	return netip.Addr{}
}

func (d *daemon) guessed(fam, trueName, dev string, a netip.Addr) netip.Addr {
	d.log.Warn(fmt.Sprintf("no src %s address found from netifd for interface '%s' dev '%s' guessing %s", fam, trueName, dev, a))
	return a
}

// familyName is the config spelling of an nft family.
func familyName(f nft.Family) string { return f.String() }
