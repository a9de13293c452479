package daemon

import (
	"github.com/mwan3d/mwan3d/config"
)

// Share is one active member of a policy with its traffic share.
type Share struct {
	Interface string `ubus:"interface"`
	Member    string `ubus:"-"`
	Weight    int    `ubus:"-"`
	Metric    int    `ubus:"-"`
	// Percent is weight × 100 / Σ active weights, integer division, as
	// legacy's `mwan3 policies` prints it.
	Percent int `ubus:"percent"`
}

// ActiveShares computes, for one policy and family, the members that
// receive traffic now: the online members of that family at the lowest
// metric among online members, in legacy's evaluation order (the chain is
// built in use_member order with each equal-metric member inserted at the
// top, so the last one listed is evaluated first). An empty result means
// the policy's last_resort applies.
func ActiveShares(cfg *config.Config, p *config.Policy, fam config.Family, online func(iface string) bool) []Share {
	lowest := -1
	var active []Share
	for _, name := range p.Members {
		m := cfg.Member(name)
		if m == nil {
			continue
		}
		iface := cfg.Interface(m.Interface)
		if iface == nil || !iface.Enabled || iface.Family != fam || !online(iface.Name) {
			continue
		}
		switch {
		case lowest < 0 || m.Metric < lowest:
			lowest = m.Metric
			active = active[:0]
		case m.Metric > lowest:
			continue
		}
		active = append(active, Share{Interface: iface.Name, Member: m.Name, Weight: m.Weight, Metric: m.Metric})
	}
	total := 0
	for _, s := range active {
		total += s.Weight
	}
	out := make([]Share, len(active))
	for i, s := range active {
		s.Percent = s.Weight * 100 / total
		out[len(active)-1-i] = s
	}
	return out
}
