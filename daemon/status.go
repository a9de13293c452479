package daemon

import (
	"github.com/mwan3d/mwan3d/ubus"
)

// Snapshot is the immutable state the loop publishes after each batch of
// inputs; ubus requests and the CLI read it and never touch live state.
type Snapshot struct {
	Running    bool            // the service has its state up
	Interfaces []IfaceSnapshot // every interface section, in config order
	Connected  Connected
	// Policies per family, in config order; only policies legacy would
	// have created.
	Policies4, Policies6 []PolicySnapshot
}

// IfaceSnapshot is one interface as `mwan3 status` reports it.
type IfaceSnapshot struct {
	Name     string
	Enabled  bool
	Up       bool  // netifd "up"
	Uptime   int64 // netifd "uptime", 0 when down
	Status   string
	Tracking string
	Age      int64 // seconds since the last completed round, 0 if none
	Online   int64 // seconds since it went online, 0 if not online
	Offline  int64 // seconds since it went offline, 0 if online
	Score    int
	Lost     int
	Turn     int
	Targets  []TargetSnapshot
}

// TargetSnapshot is one track_ip target, in config order.
type TargetSnapshot struct {
	IP         string
	Status     string // up, down, skipped, unknown
	Latency    int    // ms, legacy's LATENCY file (check_quality only)
	PacketLoss int    // %, legacy's LOSS file (check_quality only)
	// Rolling-window statistics, new in mwan3d (dpinger-like).
	RTTAvgMs   float64
	JitterMs   float64
	LossWindow float64 // fraction of probes lost in the window, 0..1
}

// Connected lists the connected-network entries as `mwan3 status` shows
// them (single addresses without /32 or /128).
type Connected struct {
	IPv4 []string `ubus:"ipv4"`
	IPv6 []string `ubus:"ipv6"`
}

// PolicySnapshot is one policy's active members for one family.
type PolicySnapshot struct {
	Name       string
	LastResort string
	Active     []Share
}

// StatusReply answers `ubus call mwan3 status {section, interface}` with
// spec §7.2's dispatch: "interfaces", "connected" or "policies" give that
// key only, anything else all three; interface restricts the interfaces
// object to that one (empty when unknown).
func (s *Snapshot) StatusReply(section, iface string, filterIface bool) ubus.Table {
	var out ubus.Table
	all := section != "interfaces" && section != "connected" && section != "policies"
	if all || section == "interfaces" {
		out = append(out, ubus.Field{Name: "interfaces", Value: s.interfacesReply(iface, filterIface)})
	}
	if all || section == "connected" {
		c := Connected{IPv4: []string{}, IPv6: []string{}}
		if s.Running {
			c.IPv4 = append(c.IPv4, s.Connected.IPv4...)
			c.IPv6 = append(c.IPv6, s.Connected.IPv6...)
		}
		out = append(out, ubus.Field{Name: "connected", Value: c})
	}
	if all || section == "policies" {
		out = append(out, ubus.Field{Name: "policies", Value: ubus.Table{
			{Name: "ipv4", Value: s.policiesReply(s.Policies4)},
			{Name: "ipv6", Value: s.policiesReply(s.Policies6)},
		}})
	}
	return out
}

func (s *Snapshot) interfacesReply(only string, filter bool) ubus.Table {
	out := ubus.Table{}
	for _, i := range s.Interfaces {
		if filter && i.Name != only {
			continue
		}
		out = append(out, ubus.Field{Name: i.Name, Value: i.reply()})
	}
	return out
}

// reply is one interface of the reply with legacy's field order (spec
// §7.3), new fields last; numbers travel as int32, as rpcd's ucode bridge
// sends them. The status call is hot, and tables encode without
// reflection.
func (i *IfaceSnapshot) reply() ubus.Table {
	tips := make([]any, len(i.Targets))
	for n, t := range i.Targets {
		tips[n] = ubus.Table{
			{Name: "ip", Value: t.IP}, {Name: "status", Value: t.Status}, {Name: "latency", Value: int32(t.Latency)},
			{Name: "packetloss", Value: int32(t.PacketLoss)}, {Name: "rtt_avg_ms", Value: t.RTTAvgMs},
			{Name: "jitter_ms", Value: t.JitterMs}, {Name: "loss_window", Value: t.LossWindow},
		}
	}
	return ubus.Table{
		{Name: "age", Value: int32(i.Age)}, {Name: "online", Value: int32(i.Online)}, {Name: "offline", Value: int32(i.Offline)},
		{Name: "uptime", Value: int32(i.Uptime)}, {Name: "score", Value: int32(i.Score)}, {Name: "lost", Value: int32(i.Lost)},
		{Name: "turn", Value: int32(i.Turn)}, {Name: "status", Value: i.Status}, {Name: "enabled", Value: i.Enabled},
		{Name: "running", Value: i.Tracking == "active"}, {Name: "tracking", Value: i.Tracking}, {Name: "up", Value: i.Up},
		{Name: "track_ip", Value: tips},
	}
}

func (s *Snapshot) policiesReply(ps []PolicySnapshot) ubus.Table {
	out := ubus.Table{}
	if !s.Running {
		return out
	}
	for _, p := range ps {
		members := make([]any, len(p.Active))
		for n, a := range p.Active {
			members[n] = ubus.Table{{Name: "interface", Value: a.Interface}, {Name: "percent", Value: int32(a.Percent)}}
		}
		out = append(out, ubus.Field{Name: p.Name, Value: members})
	}
	return out
}
