package daemon

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
)

// Flow is a new connection to explain. Zero fields are unknown: a rule
// that tests an unknown field does not match.
type Flow struct {
	Family   nft.Family // IPv4 or IPv6
	Src, Dst netip.Addr
	Proto    int // protocol number, -1 when not given
	SrcPort  int // 0 when not given
	DstPort  int
	// SrcIface is the netifd interface the packet arrives on; empty for
	// a LAN client (no src_iface rule matches) or locally generated
	// traffic.
	SrcIface string
}

// Explanation says how mwan3 routes a new connection now.
type Explanation struct {
	Family string `ubus:"family"`
	// Stage is where the decision is taken: "iface_in" (arrives on a
	// WAN), "bypass" (destination in a connected or custom network),
	// "rule" (a user rule matched) or "none" (no rule: main table).
	Stage  string `ubus:"stage"`
	Rule   string `ubus:"rule,omitempty"`
	Policy string `ubus:"policy,omitempty"`
	Sticky bool   `ubus:"sticky"`
	// Action is "balance" (Interfaces share it), "main" (the main routing
	// table), "unreachable" or "blackhole".
	Action     string   `ubus:"action"`
	Interfaces []Choice `ubus:"interfaces"`
	// Notes lists what could not be decided (rules on the contents of a
	// set that could not be read).
	Notes []string `ubus:"notes"`
}

// Choice is one interface a connection may take, with its probability.
type Choice struct {
	Interface   string  `ubus:"interface"`
	Device      string  `ubus:"device"`
	Probability float64 `ubus:"probability"`
	Percent     int     `ubus:"percent"`
}

// Explain evaluates flow against the ruleset rendered from in (plan), in
// the packet path's order (spec §4.2): arrival on a WAN, the bypass sets,
// the user rules (first match wins, only the variants the renderer
// emitted), then the policy's active members as the plan balances them.
// sets reads the sets that rules with an ipset option match; without it
// (nil) such rules do not match and a note says so.
func Explain(in *nft.Input, plan *nft.Plan, f Flow, sets SetLookup) Explanation {
	ex := Explanation{Family: familyName(f.Family), Interfaces: []Choice{}, Notes: []string{}}
	devices := map[string]string{}
	for _, i := range in.Interfaces {
		devices[i.Name] = i.Device
	}
	if f.SrcIface != "" {
		for _, i := range in.Interfaces {
			if i.Enabled && i.Device != "" && i.Name == f.SrcIface && i.Family == f.Family {
				ex.Stage = "iface_in"
				if f.Src.IsValid() && (inPrefixes(in.Connected, f.Src) || inPrefixes(in.Custom, f.Src)) {
					ex.Action = "main"
					return ex
				}
				ex.Action = "balance"
				ex.Interfaces = append(ex.Interfaces, Choice{Interface: i.Name, Device: i.Device, Probability: 1, Percent: 100})
				return ex
			}
		}
	}
	if f.Dst.IsValid() && (inPrefixes(in.Connected, f.Dst) || inPrefixes(in.Custom, f.Dst)) {
		ex.Stage, ex.Action = "bypass", "main"
		return ex
	}
	rendered := map[string]bool{}
	for _, c := range plan.Counters {
		if c.Kind == nft.CounterRule && c.Family == f.Family {
			rendered[c.Rule] = true
		}
	}
	for i := range in.Rules {
		r := &in.Rules[i]
		if !rendered[r.Name] {
			continue
		}
		ok, note := ruleMatches(r, f, sets)
		if note != "" {
			ex.Notes = append(ex.Notes, note)
		}
		if !ok {
			continue
		}
		ex.Stage, ex.Rule, ex.Policy, ex.Sticky = "rule", r.Name, r.UsePolicy, r.Sticky
		policyChoice(&ex, plan, r.UsePolicy, f.Family, devices)
		return ex
	}
	ex.Stage, ex.Action = "none", "main"
	return ex
}

// policyChoice fills in what a policy does with the connection now.
func policyChoice(ex *Explanation, plan *nft.Plan, policy string, fam nft.Family, devices map[string]string) {
	switch policy {
	case config.PolicyDefault:
		ex.Action = "main"
		return
	case config.PolicyUnreachable, config.PolicyBlackhole:
		ex.Action = policy
		return
	}
	for _, ps := range plan.Policies {
		if ps.Policy != policy || ps.Family != fam {
			continue
		}
		if len(ps.Active) == 0 || ps.Total <= 0 {
			ex.Action = ps.LastResort
			if ex.Action == config.PolicyDefault {
				ex.Action = "main"
			}
			return
		}
		ex.Action = "balance"
		for _, a := range ps.Active {
			ex.Interfaces = append(ex.Interfaces, Choice{Interface: a.Interface, Device: devices[a.Interface],
				Probability: float64(a.Weight) / float64(ps.Total), Percent: a.Weight * 100 / ps.Total})
		}
		return
	}
	ex.Action = config.PolicyUnreachable
}

// ruleMatches tells whether the rule matches the flow, with a note when
// the answer depends on a set that could not be read.
func ruleMatches(r *nft.UserRule, f Flow, sets SetLookup) (bool, string) {
	if r.Family != nft.FamilyAny && r.Family != f.Family {
		return false, ""
	}
	proto, specific, err := nft.ParseProto(r.Proto)
	if err != nil {
		return false, ""
	}
	if specific && int(proto) != f.Proto {
		return false, ""
	}
	if !r.SrcMatches(f.Src) || !r.DestMatches(f.Dst) {
		return false, ""
	}
	if specific && (proto == 6 || proto == 17) {
		if !portMatches(r.SrcPort, f.SrcPort) || !portMatches(r.DestPort, f.DstPort) {
			return false, ""
		}
	}
	if r.SrcIface != "" && r.SrcIface != f.SrcIface {
		return false, ""
	}
	if r.Ipset != "" {
		if sets == nil {
			return false, fmt.Sprintf("rule %s: matches only if the destination is in set %s (not checked)", r.Name, r.Ipset)
		}
		in, err := sets(r.Ipset, f.Dst)
		if err != nil {
			return false, fmt.Sprintf("rule %s: matches only if the destination is in set %s (not checked: %v)", r.Name, r.Ipset, err)
		}
		return in, ""
	}
	return true, ""
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

func portMatches(rs []nft.PortRange, port int) bool {
	if len(rs) == 0 {
		return true
	}
	return port > 0 && slices.ContainsFunc(rs, func(r nft.PortRange) bool { return port >= int(r.First) && port <= int(r.Last) })
}
