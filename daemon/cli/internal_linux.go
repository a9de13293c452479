package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

// dumpTimeout bounds each rtnetlink dump.
const dumpTimeout = 10 * time.Second

// gatherNet reads links, addresses, routes and rules of a family with
// rtnetlink dumps, which need no privileges.
func gatherNet(v6 bool) (*netState, error) {
	fam := byte(unix.AF_INET)
	if v6 {
		fam = unix.AF_INET6
	}
	c, err := nlsock.Open(netns.None(), unix.NETLINK_ROUTE, 0)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// dump runs the dump request typ (RTM_GET*) of family f, whose header
	// is hdrLen bytes, and passes each answer (RTM_NEW*, which is RTM_GET*
	// − 2 for links, addresses, routes and rules) to parse.
	dump := func(typ uint16, f byte, hdrLen int, parse func(b []byte) error) error {
		req := make([]byte, hdrLen)
		req[0] = f
		var perr error
		err := c.Execute(typ, nlsock.FlagDump, req, dumpTimeout, func(m nlsock.Message) bool {
			if m.Type == typ-2 {
				perr = parse(m.Data)
			}
			return perr == nil
		})
		// An interrupted dump still shows what a person wants to see.
		if errors.Is(err, nlsock.ErrDumpInterrupted) {
			err = nil
		}
		return errors.Join(err, perr)
	}

	var links []linkMsg
	err = dump(unix.RTM_GETLINK, unix.AF_UNSPEC, ifinfomsgLen, func(b []byte) error {
		l, err := parseLinkMsg(b)
		links = append(links, l)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	byIndex := make(map[int]*linkMsg, len(links))
	for i := range links {
		byIndex[links[i].Index] = &links[i]
	}
	name := func(i int) string {
		if l := byIndex[i]; l != nil {
			return l.Name
		}
		return ""
	}
	addrs := map[int][]ipAddr{}
	err = dump(unix.RTM_GETADDR, fam, ifaddrmsgLen, func(b []byte) error {
		a, err := parseAddrMsg(b)
		if err == nil && a.Family == fam && a.Prefix.IsValid() {
			addrs[a.Index] = append(addrs[a.Index], a.ipAddr)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	st := &netState{Tables: map[int][]ipRoute{}}
	for _, l := range links {
		st.Links = append(st.Links, convLink(l, byIndex, addrs[l.Index]))
	}
	err = dump(unix.RTM_GETROUTE, fam, rtmsgLen, func(b []byte) error {
		r, ok, err := parseRouteMsg(b, name)
		switch {
		case err != nil || !ok:
		case r.Table == unix.RT_TABLE_MAIN:
			st.Main = append(st.Main, r)
		case r.Table >= 1 && r.Table <= maxUserTable:
			st.Tables[r.Table] = append(st.Tables[r.Table], r)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	err = dump(unix.RTM_GETRULE, fam, fibRuleHdrLen, func(b []byte) error {
		r, err := parseRuleMsg(b)
		st.Rules = append(st.Rules, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	return st, nil
}

// convLink is the link as internal shows it, with its addresses.
func convLink(l linkMsg, byIndex map[int]*linkMsg, addrs []ipAddr) ipLink {
	il := ipLink{Index: l.Index, Name: l.Name, Flags: l.Flags, MTU: l.MTU, Group: l.Group, TxQLen: l.TxQLen,
		State: operState(l.OperState), Addrs: addrs}
	if m := byIndex[l.Master]; l.Master != 0 && m != nil {
		il.Master = m.Name
	}
	if l.Parent != 0 && l.Parent != l.Index {
		if p := byIndex[l.Parent]; p != nil && l.NetNsID < 0 {
			il.Peer = p.Name
			il.PeerDown = p.Flags&iffUp == 0
		} else {
			il.Peer = fmt.Sprintf("if%d", l.Parent)
		}
	}
	return il
}

// ipv6Supported tells whether the kernel has IPv6, as the daemon decides
// it.
func ipv6Supported() bool {
	_, err := os.Stat("/proc/net/if_inet6")
	return err == nil
}
