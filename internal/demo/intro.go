package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mwan3d/mwan3d/config"
)

// intro is printed once at the start: the network, the configuration, the
// track targets and the timeline.
func intro(cfg *demoConfig, tl timeline, rows []row, cut *config.Interface, cutNames []string,
	targets []netip.Addr, skipped []string) string {
	var b strings.Builder
	b.WriteString("mwan3d demo: multi-WAN load balancing and failover on a router built of network namespaces\n\n")
	byDev := map[string][]string{}
	var devs []string
	for _, r := range rows {
		if _, ok := byDev[r.Device]; !ok {
			devs = append(devs, r.Device)
		}
		byDev[r.Device] = append(byDev[r.Device], r.Name)
	}
	var wans []string
	for _, d := range devs {
		wans = append(wans, strings.Join(byDev[d], "/")+" on "+d)
	}
	fmt.Fprintf(&b, "network: a router with %s, a LAN client, one ISP per WAN and an internet host\n", strings.Join(wans, " and "))
	fmt.Fprintf(&b, "config:  %s", defaultConfigName)
	if len(cfg.Enabled) > 0 {
		fmt.Fprintf(&b, " with %s enabled too (the package enables only the first WAN)", strings.Join(cfg.Enabled, ", "))
	}
	if cfg.Interval > 0 {
		fmt.Fprintf(&b, ", every interface tracked every %d s (-interval)", cfg.Interval)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "policy:  new connections use %s\n", cfg.balance())
	if len(targets) > 0 {
		var ts []string
		for _, t := range targets {
			ts = append(ts, t.String())
		}
		fmt.Fprintf(&b, "targets: the internet host answers the track_ip addresses %s\n", strings.Join(ts, " "))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "         (host names %s cannot answer here)\n", strings.Join(skipped, " "))
	}
	b.WriteString("\n")
	b.WriteString(tl.describe(strings.Join(cutNames, " and "), cut))
	return b.String()
}
