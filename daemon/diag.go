package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/ubus"
)

// Inspector reads the kernel state that the CLI reports and cannot read
// itself without root: rules, routes and the nft table.
type Inspector interface {
	// RulePriorities returns the priorities of the ip rules of a family.
	RulePriorities(fam nft.Family) (map[int]bool, error)
	// DefaultRoute tells whether routing table has a default route of
	// the family through device dev.
	DefaultRoute(fam nft.Family, table int, dev string) (bool, error)
	// Chains returns the names of the chains of table inet mwan3 (empty
	// when the table does not exist).
	Chains() (map[string]bool, error)
	// Ruleset returns `nft list table inet mwan3`, "" when the table
	// does not exist; an error wrapping exec.ErrNotFound when nft is not
	// installed.
	Ruleset(ctx context.Context) (string, error)
}

// Detail bits of `mwan3 interfaces` (spec §8.2): what is missing of an
// interface's kernel state.
const (
	DetailRuleIif         = 1  // ip rule 1000+id (iif)
	DetailRuleMark        = 2  // ip rule 2000+id (fwmark lookup)
	DetailRuleUnreachable = 4  // ip rule 3000+id (fwmark unreachable)
	DetailChain           = 8  // the interface's chain in table inet mwan3
	DetailRoute           = 16 // default route through its device in table id
)

// ifaceInChain is the nft chain of an interface that marks what arrives
// on it (nft names it so; TestIfaceInChainName checks it).
func ifaceInChain(name string) string { return "iface_in_" + name }

// diagIface is one interface of the diag reply.
type diagIface struct {
	ID      int    `ubus:"id"`
	Family  string `ubus:"family"`
	Enabled bool   `ubus:"enabled"`
	Device  string `ubus:"device"`
	// Hotplug is legacy's iface_state: online (in the policies), offline,
	// or unknown (disabled interface, or the service is not up).
	Hotplug string `ubus:"hotplug"`
	// The kernel state found, and Detail, the sum of the bits of what is
	// missing (spec §8.2).
	RuleIif         bool `ubus:"rule_iif"`
	RuleMark        bool `ubus:"rule_mark"`
	RuleUnreachable bool `ubus:"rule_unreachable"`
	Chain           bool `ubus:"chain"`
	Route           bool `ubus:"route"`
	Detail          int  `ubus:"detail"`
}

// handleDiag answers diag {interface?}: per interface (config order) the
// kernel state `mwan3 interfaces` reports, and each policy's last resort.
func (d *daemon) handleDiag(_ context.Context, req *ubus.Request) error {
	only, filter, err := tableString(req.Args, "interface")
	if err != nil {
		return argError(req, "%v", err)
	}
	if d.k.Inspect == nil {
		req.Reply(ubus.Table{{Name: "error", Value: "kernel inspection is not available"}})
		return ubus.StatusNotSupported
	}
	v := d.view.Load()
	ifaces, err := diagInterfaces(d.k.Inspect, v, func(name string) bool { return !filter || name == only })
	if err != nil {
		req.Reply(ubus.Table{{Name: "error", Value: err.Error()}})
		return ubus.StatusUnknownError
	}
	pols := ubus.Table{}
	for _, p := range v.cfg.Policies {
		pols = append(pols, ubus.Field{Name: p.Name, Value: ubus.Table{{Name: "last_resort", Value: p.LastResort}}})
	}
	return req.Reply(ubus.Table{
		{Name: "interfaces", Value: ifaces},
		{Name: "policies", Value: pols},
	})
}

// diagInterfaces checks the kernel state of the interfaces that want
// selects.
func diagInterfaces(k Inspector, v *view, want func(string) bool) (ubus.Table, error) {
	prios := map[nft.Family]map[int]bool{}
	for _, fam := range []nft.Family{nft.IPv4, nft.IPv6} {
		p, err := k.RulePriorities(fam)
		if err != nil {
			return nil, fmt.Errorf("list %s ip rules: %w", fam, err)
		}
		prios[fam] = p
	}
	chains, err := k.Chains()
	if err != nil {
		return nil, fmt.Errorf("list the chains of table inet %s: %w", nft.TableName, err)
	}
	out := ubus.Table{}
	for _, i := range v.cfg.Interfaces {
		if !want(i.Name) {
			continue
		}
		iv := v.ifaces[i.Name]
		fam := nftFamily(i.Family)
		di := diagIface{ID: i.ID, Family: familyName(fam), Enabled: i.Enabled, Device: iv.device, Hotplug: "unknown"}
		if v.running && i.Enabled {
			di.Hotplug = "offline"
			if iv.online {
				di.Hotplug = "online"
			}
		}
		di.RuleIif = prios[fam][1000+i.ID]
		di.RuleMark = prios[fam][2000+i.ID]
		di.RuleUnreachable = prios[fam][3000+i.ID]
		di.Chain = chains[ifaceInChain(i.Name)]
		if iv.device != "" {
			if di.Route, err = k.DefaultRoute(fam, i.ID, iv.device); err != nil {
				return nil, fmt.Errorf("routes of table %d: %w", i.ID, err)
			}
		}
		for _, c := range []struct {
			ok  bool
			bit int
		}{{di.RuleIif, DetailRuleIif}, {di.RuleMark, DetailRuleMark}, {di.RuleUnreachable, DetailRuleUnreachable},
			{di.Chain, DetailChain}, {di.Route, DetailRoute}} {
			if !c.ok {
				di.Detail += c.bit
			}
		}
		out = append(out, ubus.Field{Name: i.Name, Value: di})
	}
	return out, nil
}

// handleRuleset answers ruleset {}: {"table": "inet mwan3", "text": the
// listing} as nft prints it, with counters and the dynamic sets' elements;
// the text is empty when the table does not exist. Without the nft tool
// the text is the ruleset as the daemon rendered it (counters at zero,
// dynamic sets empty), after a comment saying so.
func (d *daemon) handleRuleset(ctx context.Context, req *ubus.Request) error {
	if d.k.Inspect == nil {
		req.Reply(ubus.Table{{Name: "error", Value: "kernel inspection is not available"}})
		return ubus.StatusNotSupported
	}
	text, err := d.k.Inspect.Ruleset(ctx)
	if errors.Is(err, exec.ErrNotFound) {
		text, err = "", nil
		if v := d.view.Load(); v.plan != nil {
			text = "# nft is not installed: the ruleset as mwan3d applied it, without counters and dynamic set contents\n" + v.plan.String()
		}
	}
	if err != nil {
		req.Reply(ubus.Table{{Name: "error", Value: err.Error()}})
		return ubus.StatusUnknownError
	}
	return req.Reply(ubus.Table{{Name: "table", Value: "inet " + nft.TableName}, {Name: "text", Value: text}})
}

// userRuleReply is one rule of the userrules reply, for one family.
type userRuleReply struct {
	Rule      string   `ubus:"rule"`
	Policy    string   `ubus:"policy"`
	Sticky    bool     `ubus:"sticky"`
	Logging   bool     `ubus:"logging"`
	Proto     string   `ubus:"proto"`
	SrcIP     []string `ubus:"src_ip"`
	DestIP    []string `ubus:"dest_ip"`
	SrcPort   []string `ubus:"src_port"`
	DestPort  []string `ubus:"dest_port"`
	SrcIface  string   `ubus:"src_iface"`
	SrcDevice string   `ubus:"src_device"`
	Ipset     string   `ubus:"ipset"`
	Packets   uint64   `ubus:"packets"`
	Bytes     uint64   `ubus:"bytes"`
}

// handleUserRules answers userrules {}: per family, the user rules in
// force (config order, only those the ruleset has for the family) with
// what they match and their counters of new connections — what `mwan3
// rules` prints.
func (d *daemon) handleUserRules(_ context.Context, req *ubus.Request) error {
	v := d.view.Load()
	var vals []nft.CounterValue
	if v.plan != nil {
		var err error
		if vals, err = d.k.NFT.Counters(v.plan); err != nil {
			req.Reply(ubus.Table{{Name: "error", Value: err.Error()}})
			return ubus.StatusUnknownError
		}
	}
	return req.Reply(userRules(v.input, vals))
}

// userRules builds the userrules reply.
func userRules(in *nft.Input, vals []nft.CounterValue) ubus.Table {
	out := ubus.Table{}
	for _, fam := range []nft.Family{nft.IPv4, nft.IPv6} {
		list := []userRuleReply{}
		if in != nil {
			for _, r := range in.Rules {
				for _, c := range vals {
					if c.Kind != nft.CounterRule || c.Rule != r.Name || c.Family != fam {
						continue
					}
					list = append(list, userRuleReply{
						Rule: r.Name, Policy: r.UsePolicy, Sticky: r.Sticky, Logging: in.Logging && r.Logging,
						Proto: r.Proto, SrcIP: familyAddrs(r.SrcIP, r.SrcMasked, fam), DestIP: familyAddrs(r.DestIP, r.DestMasked, fam),
						SrcPort: portStrings(r.SrcPort), DestPort: portStrings(r.DestPort),
						SrcIface: r.SrcIface, SrcDevice: r.SrcDevice, Ipset: r.Ipset,
						Packets: c.Packets, Bytes: c.Bytes,
					})
					break
				}
			}
		}
		out = append(out, ubus.Field{Name: familyName(fam), Value: list})
	}
	return out
}

// familyAddrs lists a rule's address matches of one family: prefixes,
// then addresses under non-contiguous masks ("0.0.0.1/0.0.0.1").
func familyAddrs(ps []netip.Prefix, ms []nft.MaskedAddr, fam nft.Family) []string {
	out := []string{}
	for _, p := range ps {
		if p.Addr().Is4() == (fam == nft.IPv4) {
			out = append(out, p.String())
		}
	}
	for _, m := range ms {
		if m.Addr.Is4() == (fam == nft.IPv4) {
			out = append(out, m.String())
		}
	}
	return out
}

// portStrings spells port ranges as UCI does: "443", "1000-2000".
func portStrings(rs []nft.PortRange) []string {
	out := []string{}
	for _, r := range rs {
		s := fmt.Sprint(r.First)
		if r.Last != r.First {
			s += fmt.Sprintf("-%d", r.Last)
		}
		out = append(out, s)
	}
	return out
}

// useReply answers `use`: what `mwan3 use` needs to run a command bound
// to an interface.
type useReply struct {
	Interface string `ubus:"interface"`
	Family    string `ubus:"family"`
	// Device is the interface's L3 device and Source its source address
	// (spec §5.3.3); empty when netifd has none.
	Device string `ubus:"device"`
	Source string `ubus:"source"`
	Mark   string `ubus:"mark"`
	// Cgroup is the cgroup v2 directory whose sockets the ruleset marks
	// for the interface; empty with CgroupError saying why.
	Cgroup      string `ubus:"cgroup"`
	CgroupError string `ubus:"cgroup_error,omitempty"`
}

// handleUse answers use {interface}. The loop computes the answer (it
// owns netifd's view); an interface that is not an enabled mwan3
// interface is NOT_FOUND.
func (d *daemon) handleUse(ctx context.Context, req *ubus.Request) error {
	name, ok, err := tableString(req.Args, "interface")
	if err != nil {
		return argError(req, "%v", err)
	}
	if !ok || name == "" {
		return argError(req, "Expecting interface. Usage: mwan3 use <interface> <command>")
	}
	res, err := d.askIface(ctx, req, "use", name)
	if err != nil {
		return err
	}
	return req.Reply(res.data)
}

// useInfo runs on the loop for handleUse.
func (d *daemon) useInfo(name string) (useReply, error) {
	i, s := d.state(name)
	if s == nil {
		return useReply{}, &ifaceError{ubus.StatusNotFound, fmt.Sprintf("%s is not an enabled mwan3 interface", name)}
	}
	rep := useReply{Interface: name, Family: familyName(nftFamily(i.Family)),
		Mark: fmt.Sprintf("0x%x", config.Mark(d.cfg.Globals.MMXMask, uint32(i.ID)))}
	if up, dev := d.netifdUp(i); up {
		rep.Device = dev
		if b := d.binding(i, s); b.Source.IsValid() {
			rep.Source = b.Source.String()
		}
	}
	var err error
	if rep.Cgroup, err = d.cg.dir(name); err != nil {
		rep.CgroupError = err.Error()
	}
	return rep, nil
}
