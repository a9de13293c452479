package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
)

// openKernel opens the real kernel parts in the daemon's network
// namespace: the nft applier, the route watcher, the tracker manager
// (files under trackDir), a netlink handle for conntrack and the legacy
// sweep with its programs.
func openKernel(trackDir string, legacy LegacyTools, log *slog.Logger) (*Kernel, error) {
	rk, err := rtsync.OpenKernel(netns.None())
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		rk.Close()
		return nil, fmt.Errorf("open ctnetlink: %w", err)
	}
	_, noV6 := os.Stat("/proc/net/if_inet6")
	return &Kernel{
		NFT:      nft.NewApplier(nft.WithLogger(log.With("component", "nft"))),
		Routes:   rtsync.NewWatcher(rk, rtsync.WatcherConfig{Logger: log.With("component", "mwan3rtmon")}),
		Trackers: track.NewManager(track.Config{Dir: trackDir, Logger: log.With("component", "mwan3track")}),
		FlushConntrack: func(mask, mark uint32) (uint, error) {
			return FlushConntrackMark(h, mask, mark)
		},
		Uptime:      BootTime,
		DeviceAddrs: deviceAddrs,
		NoIPv6:      noV6 != nil,
		Legacy:      NewLegacyState(legacy, nil),
		SetLookup:   nftSetLookup(),
		Inspect:     kernelInspector{},
		Close: func() error {
			h.Close()
			return rk.Close()
		},
	}, nil
}

// BootTime is the system uptime (CLOCK_BOOTTIME, what /proc/uptime shows
// and the tracker files record).
func BootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// deviceAddrs lists the addresses of every device.
func deviceAddrs() (map[string][]netip.Prefix, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	out := map[string][]netip.Prefix{}
	var errs []error
	for _, ifc := range ifs {
		as, err := ifc.Addrs()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(n.IP)
				ones, _ := n.Mask.Size()
				out[ifc.Name] = append(out[ifc.Name], netip.PrefixFrom(ip.Unmap(), ones))
			}
		}
	}
	return out, errors.Join(errs...)
}
