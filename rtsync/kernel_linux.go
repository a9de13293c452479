//go:build linux

package rtsync

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

const (
	// dumpAttempts bounds the retries of a dump the kernel interrupted
	// because the table changed while it was being read.
	dumpAttempts = 5
	// socketTimeout bounds one request and its replies.
	socketTimeout = 30 * time.Second
	// subscriptionBuffer is the receive buffer asked for the notification
	// socket (the kernel caps it at net.core.rmem_max).
	subscriptionBuffer = 1 << 20
	// watchGroups are the notifications watch subscribes to.
	watchGroups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV4_ROUTE |
		unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV6_ROUTE
)

// NetlinkKernel implements [Kernel] with rtnetlink in one network namespace.
//
// It speaks rtnetlink over [nlsock] sockets and encodes and decodes the
// messages itself (codec.go): vishvananda/netlink's Route drops RTA_SRC
// (the IPv6 `from` selector, needed for source_routing) and RTA_PREF, its
// RuleList does not report a rule's action, and the library is large for
// the few messages needed. It is safe for concurrent use; requests are
// serialised on one socket.
type NetlinkKernel struct {
	ns netns.NsHandle // our duplicate of the namespace, or netns.None()
	// subBuffer is the receive buffer of the notification socket.
	subBuffer int

	conn *nlsock.Conn // the request socket
}

// OpenKernel opens an rtnetlink socket in the network namespace ns
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
	c, err := nlsock.Open(k.ns, unix.NETLINK_ROUTE, 0)
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("rtsync: %w", err)
	}
	k.conn = c
	return k, nil
}

// Close releases the socket and the namespace handle.
func (k *NetlinkKernel) Close() error {
	if k.conn != nil {
		k.conn.Close()
	}
	if k.ns.IsOpen() {
		return k.ns.Close()
	}
	return nil
}

// execute sends one request and passes the payload of every reply message
// of type resType to fn until fn returns false.
func (k *NetlinkKernel) execute(typ, flags uint16, payload []byte, resType uint16, fn func([]byte) bool) error {
	return k.conn.Execute(typ, flags, payload, socketTimeout, func(m nlsock.Message) bool {
		return m.Type != resType || fn(m.Data)
	})
}

// dump runs a dump request, decoding each message with parse, and retries
// it when the kernel reports it was interrupted by a concurrent change.
func dump[T any](k *NetlinkKernel, typ uint16, payload []byte, resType uint16, parse func([]byte) (T, bool, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		var out []T
		var parseErr error
		err := k.execute(typ, nlsock.FlagDump, payload, resType, func(m []byte) bool {
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
		case errors.Is(err, nlsock.ErrDumpInterrupted) && attempt < dumpAttempts:
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
	return dump(k, rtmGetLink, encodeLinkDump(), rtmNewLink, parseLink)
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
	err := k.execute(rtmNewRule, nlsock.FlagCreate|nlsock.FlagExcl|nlsock.FlagAck, encodeRule(r), 0, ack)
	return ignore(err, unix.EEXIST)
}

// DelRule deletes the rule matching r; a missing rule is fine.
func (k *NetlinkKernel) DelRule(r Rule) error {
	err := k.execute(rtmDelRule, nlsock.FlagAck, encodeRule(r), 0, ack)
	return ignore(err, unix.ENOENT)
}

// ReplaceRoute creates r or replaces the route with its key.
func (k *NetlinkKernel) ReplaceRoute(r Route) error {
	return k.execute(rtmNewRoute, nlsock.FlagCreate|nlsock.FlagReplace|nlsock.FlagAck, encodeRoute(r), 0, ack)
}

// AddRoute creates r; an identical existing route is fine.
func (k *NetlinkKernel) AddRoute(r Route) error {
	err := k.execute(rtmNewRoute, nlsock.FlagCreate|nlsock.FlagAck, encodeRoute(r), 0, ack)
	return ignore(err, unix.EEXIST)
}

// DelRoute deletes the route matching r; a missing route is fine.
func (k *NetlinkKernel) DelRoute(r Route) error {
	err := k.execute(rtmDelRoute, nlsock.FlagAck, encodeRoute(r), 0, ack)
	return ignore(err, unix.ESRCH, unix.ENOENT)
}

// watch implements source: it subscribes to route, address and link
// notifications in the namespace and forwards them to s until done is
// closed (nil) or the subscription is lost (an error). The goroutine it
// starts has exited when it returns.
func (k *NetlinkKernel) watch(done <-chan struct{}, s sink) error {
	c, err := nlsock.Open(k.ns, unix.NETLINK_ROUTE, watchGroups)
	if err != nil {
		return fmt.Errorf("subscribe to route, address and link changes: %w", err)
	}
	if err := c.SetReceiveBuffer(k.subBuffer); err != nil {
		c.Close()
		return fmt.Errorf("subscribe: %w", err)
	}
	// Closing the socket ends a blocked Receive.
	returned := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-done:
			c.Close()
		case <-returned:
		}
	})
	defer func() {
		close(returned)
		wg.Wait()
		c.Close()
	}()
	s.subscribed()
	for {
		err := c.Receive(func(m nlsock.Message) {
			switch m.Type {
			case rtmNewLink, rtmDelLink:
				l, ok, err := parseLink(m.Data)
				if err != nil {
					s.subscriptionError(err)
				} else if ok {
					s.link(LinkChange{Link: l, Deleted: m.Type == rtmDelLink})
				}
				s.changed()
			case rtmNewRoute, rtmDelRoute, rtmNewAddr, rtmDelAddr:
				s.changed()
			}
		})
		select {
		case <-done:
			return nil
		default:
		}
		if err != nil {
			s.subscriptionError(err)
			return fmt.Errorf("rtnetlink %w: %w", errSubscriptionLost, err)
		}
	}
}

// NewWatcher returns a [Watcher] that reconciles k's namespace and follows
// its route, address and link notifications.
func NewWatcher(k *NetlinkKernel, cfg WatcherConfig) *Watcher {
	return newWatcher(k, k, cfg)
}
