package daemon

import (
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
)

// ifaceState is what the loop knows about one mwan3 interface at run time.
type ifaceState struct {
	// up is mwan3's view: the ifup handling ran (netifd reports the
	// interface up with a device) and no ifdown since.
	up     bool
	device string // L3 device while up (rules, nft), "" otherwise
	// manualDown is set by `mwan3 ifdown` (ubus ifdown): the interface
	// stays down for mwan3 until netifd's next ifup or `mwan3 ifup`.
	manualDown bool
	// online is the hotplug state of spec §6.3: the interface takes part
	// in policies.
	online bool

	tracked        bool         // a tracker was started
	params         track.Params // the tracker's options
	binding        track.Binding
	trackerUp      bool // IfUp was sent since the last IfDown
	trackerPending bool // IfUp waits for the interface's routes
	netifdSig      string
}

// familyOf converts a config family.
func nftFamily(f config.Family) nft.Family {
	if f == config.IPv6 {
		return nft.IPv6
	}
	return nft.IPv4
}

func rtFamily(f config.Family) rtsync.Family {
	if f == config.IPv6 {
		return rtsync.IPv6
	}
	return rtsync.IPv4
}

func trackFamily(f config.Family) track.Family {
	if f == config.IPv6 {
		return track.IPv6
	}
	return track.IPv4
}

// nftInput builds the renderer's input from the configuration and the
// run-time state. srcDevice returns the L3 device of a netifd interface
// that is up ("" otherwise), for rules with src_iface. The conversion
// itself has nothing to warn about (the renderer's warnings are in the
// plan); the second result is always nil.
func nftInput(cfg *config.Config, st map[string]*ifaceState, srcDevice func(string) string, conn connectedNets, noIPv6 bool) (*nft.Input, []string) {
	in := &nft.Input{
		Mask:     nft.Mask(cfg.Globals.MMXMask),
		Logging:  cfg.Globals.Logging,
		LogLevel: cfg.Globals.LogLevel,
		NoIPv6:   noIPv6,
	}
	for _, i := range cfg.Interfaces {
		ni := nft.Interface{Name: i.Name, ID: i.ID, Family: nftFamily(i.Family), Enabled: i.Enabled}
		if s := st[i.Name]; s != nil && i.Enabled {
			ni.Online = s.online
			ni.Device = s.device
		}
		in.Interfaces = append(in.Interfaces, ni)
	}
	for _, p := range cfg.Policies {
		np := nft.Policy{Name: p.Name, LastResort: p.LastResort}
		for _, name := range p.Members {
			if m := cfg.Member(name); m != nil {
				np.Members = append(np.Members, nft.Member{Name: m.Name, Interface: m.Interface, Metric: m.Metric, Weight: m.Weight})
			}
		}
		in.Policies = append(in.Policies, np)
	}
	for _, r := range cfg.Rules {
		ur := userRule(r)
		if ur.SrcIface != "" {
			ur.SrcDevice = srcDevice(ur.SrcIface)
		}
		in.Rules = append(in.Rules, ur)
	}
	in.Connected = append(append(in.Connected, conn.connected4...), conn.connected6...)
	in.Custom = append(append(in.Custom, conn.custom4...), conn.custom6...)
	return in, nil
}

// userRule converts a rule.
func userRule(r *config.Rule) nft.UserRule {
	ur := nft.UserRule{
		Name:      r.Name,
		Proto:     r.Proto,
		SrcIface:  r.SrcIface,
		Ipset:     r.IPSet,
		Sticky:    r.Sticky,
		Timeout:   time.Duration(r.Timeout) * time.Second,
		Logging:   r.Logging,
		UsePolicy: r.UsePolicy,
	}
	switch r.Family {
	case config.IPv4:
		ur.Family = nft.IPv4
	case config.IPv6:
		ur.Family = nft.IPv6
	default:
		ur.Family = nft.FamilyAny
	}
	ur.SrcIP, ur.SrcMasked = addresses(r.SrcIP)
	ur.DestIP, ur.DestMasked = addresses(r.DestIP)
	ur.SrcPort = ports(r.SrcPort)
	ur.DestPort = ports(r.DestPort)
	return ur
}

// addresses splits an address option into prefixes and the addresses
// under non-contiguous (dotted) masks, such as 0.0.0.1/0.0.0.1.
func addresses(as []config.Address) ([]netip.Prefix, []nft.MaskedAddr) {
	var ps []netip.Prefix
	var ms []nft.MaskedAddr
	for _, a := range as {
		if p, ok := a.Prefix(); ok {
			ps = append(ps, p)
			continue
		}
		ms = append(ms, nft.MaskedAddr{Addr: a.Addr, Mask: a.Mask})
	}
	return ps, ms
}

func ports(rs []config.PortRange) []nft.PortRange {
	var out []nft.PortRange
	for _, r := range rs {
		out = append(out, nft.PortRange{First: r.From, Last: r.To})
	}
	return out
}

// rtInput builds the route syncer's input.
func rtInput(cfg *config.Config, st map[string]*ifaceState, noIPv6 bool) rtsync.Input {
	in := rtsync.Input{
		Mask:          cfg.Globals.MMXMask,
		SourceRouting: cfg.Globals.SourceRouting,
		TableLookup:   slices.Clone(cfg.Globals.RTTableLookup),
		NoIPv6:        noIPv6,
	}
	for _, i := range cfg.Interfaces {
		ri := rtsync.Interface{Name: i.Name, ID: i.ID, Family: rtFamily(i.Family), Enabled: i.Enabled}
		if s := st[i.Name]; s != nil && i.Enabled && s.up {
			ri.Up, ri.Device = true, s.device
		}
		in.Interfaces = append(in.Interfaces, ri)
	}
	return in
}

func rtInputEqual(a, b rtsync.Input) bool {
	return a.Mask == b.Mask && a.SourceRouting == b.SourceRouting && a.NoIPv6 == b.NoIPv6 &&
		slices.Equal(a.TableLookup, b.TableLookup) && slices.Equal(a.Interfaces, b.Interfaces)
}

// trackParams converts an interface's tracking options.
func trackParams(i *config.Interface) track.Params {
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	p := track.Params{
		Method:              i.TrackMethod,
		Family:              trackFamily(i.Family),
		Targets:             slices.Clone(i.TrackIP),
		Reliability:         i.Reliability,
		Count:               i.Count,
		Timeout:             sec(i.Timeout),
		Interval:            sec(i.Interval),
		FailureInterval:     sec(i.FailureInterval),
		RecoveryInterval:    sec(i.RecoveryInterval),
		KeepFailureInterval: i.KeepFailureInterval,
		Down:                i.Down,
		Up:                  i.Up,
		Size:                i.Size,
		MaxTTL:              i.MaxTTL,
		CheckQuality:        i.CheckQuality,
		FailureLatency:      ms(i.FailureLatency),
		RecoveryLatency:     ms(i.RecoveryLatency),
		FailureLoss:         i.FailureLoss,
		RecoveryLoss:        i.RecoveryLoss,
		InitialState:        track.StatusOnline,
		HTTPSSL:             i.HTTPingSSL,
	}
	if i.InitialState == "offline" {
		p.InitialState = track.StatusOffline
	}
	return p
}

func paramsEqual(a, b track.Params) bool {
	return reflect.DeepEqual(a, b)
}

// connectedNets are the bypass networks the route syncer found.
type connectedNets struct {
	connected4, connected6, custom4, custom6 []netip.Prefix
}

func connectedOf(s *rtsync.State) connectedNets {
	return connectedNets{connected4: s.Connected4, connected6: s.Connected6, custom4: s.Custom4, custom6: s.Custom6}
}

func (c connectedNets) equal(o connectedNets) bool {
	return slices.Equal(c.connected4, o.connected4) && slices.Equal(c.connected6, o.connected6) &&
		slices.Equal(c.custom4, o.custom4) && slices.Equal(c.custom6, o.custom6)
}

// statusList formats a connected set as `mwan3 status` shows it: networks
// first, then single addresses without their /32 or /128 (spec §7.4).
func statusList(ps []netip.Prefix) []string {
	out := []string{}
	for _, p := range ps {
		if !p.IsSingleIP() {
			out = append(out, p.String())
		}
	}
	for _, p := range ps {
		if p.IsSingleIP() {
			out = append(out, p.Addr().String())
		}
	}
	return out
}

func hasFlush(i *config.Interface, action string) bool {
	return slices.Contains(i.FlushConntrack, action)
}
