//go:build linux

package rtsync

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// dumpAttempts bounds the retries of a dump the kernel interrupted
	// because the table changed while it was being read.
	dumpAttempts = 5
	// socketTimeout bounds one send or receive on the request socket.
	socketTimeout = 30 * time.Second
	// subscriptionBuffer is the receive buffer asked for the notification
	// sockets (the kernel caps it at net.core.rmem_max).
	subscriptionBuffer = 1 << 20
	// channelBuffer is the length of the subscription channels.
	channelBuffer = 256
)

// NetlinkKernel implements [Kernel] with rtnetlink in one network namespace.
//
// It speaks rtnetlink through vishvananda/netlink's sockets and request
// layer, but encodes and decodes route and rule messages itself: the
// library's Route drops RTA_SRC (the IPv6 `from` selector, needed for
// source_routing) and RTA_PREF, and its RuleList does not report a rule's
// action (lookup, unreachable, blackhole).
type NetlinkKernel struct {
	ns      netns.NsHandle // our duplicate of the namespace, or netns.None()
	sockets map[int]*nl.SocketHandle
	links   *netlink.Handle
	// subBuffer is the receive buffer of the notification sockets.
	subBuffer int
}

// OpenKernel opens rtnetlink sockets in the network namespace ns
// (netns.None() for the caller's). The handle is duplicated, so the caller
// may close ns. Close releases everything.
func OpenKernel(ns netns.NsHandle) (*NetlinkKernel, error) {
	k := &NetlinkKernel{ns: netns.None(), subBuffer: subscriptionBuffer}
	if ns.IsOpen() {
		fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("rtsync: duplicate namespace handle: %w", err)
		}
		k.ns = netns.NsHandle(fd)
	}
	s, err := nl.GetNetlinkSocketAt(k.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("rtsync: open rtnetlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(socketTimeout.Nanoseconds())
	_ = s.SetSendTimeout(&tv)
	_ = s.SetReceiveTimeout(&tv)
	_ = s.SetExtAck(true) // only improves error messages
	k.sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	k.links, err = netlink.NewHandleAt(k.ns, unix.NETLINK_ROUTE)
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("rtsync: open link handle: %w", err)
	}
	return k, nil
}

// Close releases the sockets and the namespace handle.
func (k *NetlinkKernel) Close() error {
	if sh := k.sockets[unix.NETLINK_ROUTE]; sh != nil {
		sh.Close()
	}
	if k.links != nil {
		k.links.Close()
	}
	if k.ns.IsOpen() {
		return k.ns.Close()
	}
	return nil
}

// execute sends one request and passes every reply message to fn.
func (k *NetlinkKernel) execute(typ, flags int, payload []byte, resType uint16, fn func([]byte) bool) error {
	req := nl.NewNetlinkRequest(typ, flags)
	req.AddRawData(payload)
	req.Sockets = k.sockets
	return req.ExecuteIter(unix.NETLINK_ROUTE, resType, fn)
}

// dump runs a dump request, decoding each message with parse, and retries
// it when the kernel reports it was interrupted by a concurrent change.
func dump[T any](k *NetlinkKernel, typ int, payload []byte, resType uint16, parse func([]byte) (T, bool, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		var out []T
		var parseErr error
		err := k.execute(typ, unix.NLM_F_DUMP, payload, resType, func(m []byte) bool {
			v, ok, err := parse(m)
			if err != nil {
				parseErr = err
				return false
			}
			if ok {
				out = append(out, v)
			}
			return true
		})
		switch {
		case errors.Is(err, nl.ErrDumpInterrupted) && attempt < dumpAttempts:
			continue
		case err != nil:
			return nil, err
		case parseErr != nil:
			return nil, parseErr
		}
		return out, nil
	}
}

// Links lists the network devices.
func (k *NetlinkKernel) Links() ([]Link, error) {
	for attempt := 1; ; attempt++ {
		ls, err := k.links.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) && attempt < dumpAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		out := make([]Link, 0, len(ls))
		for _, l := range ls {
			out = append(out, linkOf(l.Attrs()))
		}
		return out, nil
	}
}

func linkOf(a *netlink.LinkAttrs) Link {
	return Link{
		Index:   a.Index,
		Name:    a.Name,
		Up:      a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
	}
}

// Rules lists the ip rules of family f.
func (k *NetlinkKernel) Rules(f Family) ([]Rule, error) {
	return dump(k, rtmGetRule, encodeRuleDump(f), rtmNewRule, parseRule)
}

// Routes lists the routes of every table of family f.
func (k *NetlinkKernel) Routes(f Family) ([]Route, error) {
	routes, err := dump(k, rtmGetRoute, encodeRouteDump(f), rtmNewRoute, parseRoute)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, r := range routes {
		if r.Family == f {
			routes[n] = r
			n++
		}
	}
	return routes[:n], nil
}

func ack([]byte) bool { return true }

// ignore returns nil when err is one of the errnos that mean "already done".
func ignore(err error, done ...unix.Errno) error {
	for _, e := range done {
		if errors.Is(err, e) {
			return nil
		}
	}
	return err
}

// AddRule adds r; an identical existing rule is fine.
func (k *NetlinkKernel) AddRule(r Rule) error {
	err := k.execute(rtmNewRule, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK, encodeRule(r), 0, ack)
	return ignore(err, unix.EEXIST)
}

// DelRule deletes the rule matching r; a missing rule is fine.
func (k *NetlinkKernel) DelRule(r Rule) error {
	err := k.execute(rtmDelRule, unix.NLM_F_ACK, encodeRule(r), 0, ack)
	return ignore(err, unix.ENOENT)
}

// ReplaceRoute creates r or replaces the route with its key.
func (k *NetlinkKernel) ReplaceRoute(r Route) error {
	return k.execute(rtmNewRoute, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK, encodeRoute(r), 0, ack)
}

// AddRoute creates r; an identical existing route is fine.
func (k *NetlinkKernel) AddRoute(r Route) error {
	err := k.execute(rtmNewRoute, unix.NLM_F_CREATE|unix.NLM_F_ACK, encodeRoute(r), 0, ack)
	return ignore(err, unix.EEXIST)
}

// DelRoute deletes the route matching r; a missing route is fine.
func (k *NetlinkKernel) DelRoute(r Route) error {
	err := k.execute(rtmDelRoute, unix.NLM_F_ACK, encodeRoute(r), 0, ack)
	return ignore(err, unix.ESRCH, unix.ENOENT)
}

// watch implements source: it subscribes to route, address and link
// notifications in the namespace and forwards them to s until done is
// closed (nil) or a subscription is lost (an error). Every goroutine the
// subscriptions started has exited when it returns.
func (k *NetlinkKernel) watch(done <-chan struct{}, s sink) error {
	stop := make(chan struct{})
	var stopping atomic.Bool
	onError := func(err error) {
		if !stopping.Load() {
			s.subscriptionError(err)
		}
	}
	routes := make(chan netlink.RouteUpdate, channelBuffer)
	addrs := make(chan netlink.AddrUpdate, channelBuffer)
	links := make(chan netlink.LinkUpdate, channelBuffer)
	var drains []func()
	defer func() {
		stopping.Store(true)
		close(stop)
		for _, drain := range drains {
			drain()
		}
	}()
	ns := k.ns
	err := netlink.RouteSubscribeWithOptions(routes, stop, netlink.RouteSubscribeOptions{
		Namespace: &ns, ErrorCallback: onError, ReceiveBufferSize: k.subBuffer,
	})
	if err != nil {
		return fmt.Errorf("subscribe to routes: %w", err)
	}
	drains = append(drains, func() {
		for range routes {
		}
	})
	err = netlink.AddrSubscribeWithOptions(addrs, stop, netlink.AddrSubscribeOptions{
		Namespace: &ns, ErrorCallback: onError, ReceiveBufferSize: k.subBuffer,
	})
	if err != nil {
		return fmt.Errorf("subscribe to addresses: %w", err)
	}
	drains = append(drains, func() {
		for range addrs {
		}
	})
	err = netlink.LinkSubscribeWithOptions(links, stop, netlink.LinkSubscribeOptions{
		Namespace: &ns, ErrorCallback: onError, ReceiveBufferSize: k.subBuffer,
	})
	if err != nil {
		return fmt.Errorf("subscribe to links: %w", err)
	}
	drains = append(drains, func() {
		for range links {
		}
	})
	s.subscribed()
	for {
		select {
		case <-done:
			return nil
		case _, ok := <-routes:
			if !ok {
				return fmt.Errorf("route %w", errSubscriptionLost)
			}
			s.changed()
		case _, ok := <-addrs:
			if !ok {
				return fmt.Errorf("address %w", errSubscriptionLost)
			}
			s.changed()
		case u, ok := <-links:
			if !ok {
				return fmt.Errorf("link %w", errSubscriptionLost)
			}
			s.link(LinkChange{Link: linkOf(u.Attrs()), Deleted: u.Header.Type == unix.RTM_DELLINK})
			s.changed()
		}
	}
}

// NewWatcher returns a [Watcher] that reconciles k's namespace and follows
// its route, address and link notifications.
func NewWatcher(k *NetlinkKernel, cfg WatcherConfig) *Watcher {
	return newWatcher(k, k, cfg)
}
