package cli

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

// The links, addresses and routes internal shows are decoded here from the
// kernel's rtnetlink messages (struct ifinfomsg, ifaddrmsg or rtmsg, then
// attributes, in host byte order), like the rules in rulemsg.go: a Go
// binding of rtnetlink costs the router's binary more than these few
// fields.

// Header lengths and attribute types (linux/if_link.h, if_addr.h,
// rtnetlink.h).
const (
	ifinfomsgLen = 16
	ifaddrmsgLen = 8
	rtmsgLen     = 12
	rtnexthopLen = 8

	iflaMTU       = 4
	iflaLink      = 5
	iflaIfname    = 3
	iflaMaster    = 10
	iflaTxQLen    = 13
	iflaOperState = 16
	iflaGroup     = 27
	iflaNetNsID   = 37

	ifaAddress   = 1
	ifaLocal     = 2
	ifaLabel     = 3
	ifaBroadcast = 4
	ifaCacheinfo = 6
	ifaFlags     = 8

	rtaDst       = 1
	rtaOIF       = 4
	rtaGateway   = 5
	rtaPriority  = 6
	rtaPrefSrc   = 7
	rtaMultiPath = 9
	rtaTable     = 15

	rtmFCloned = 0x200
	afInet6    = 10
)

var errShortAttr = errors.New("short 32-bit attribute")

func attrU32(v []byte) (uint32, error) {
	if len(v) < 4 {
		return 0, errShortAttr
	}
	return binary.NativeEndian.Uint32(v), nil
}

// attrInt is an unsigned 32-bit attribute as an int (an index, a
// priority; values above 2^31 wrap on 32-bit systems).
func attrInt(v []byte) (int, error) {
	n, err := attrU32(v)
	return int(n), err
}

// attrAddr decodes an address attribute of a family whose addresses have
// n bytes.
func attrAddr(v []byte, n int) (netip.Addr, error) {
	if len(v) != n {
		return netip.Addr{}, fmt.Errorf("address of %d bytes, want %d", len(v), n)
	}
	a, _ := netip.AddrFromSlice(v)
	return a, nil
}

func addrLen(family byte) int {
	if family == afInet6 {
		return 16
	}
	return 4
}

// linkMsg is what internal shows of a link, with indexes not yet turned
// into names.
type linkMsg struct {
	Index, MTU, TxQLen, OperState int
	Master, Parent                int // indexes, 0 for none
	NetNsID                       int // of the parent; -1: this namespace
	Flags, Group                  uint32
	Name                          string
}

// parseLinkMsg decodes the payload of an RTM_NEWLINK message.
func parseLinkMsg(b []byte) (linkMsg, error) {
	l := linkMsg{TxQLen: -1, NetNsID: -1}
	if len(b) < ifinfomsgLen {
		return l, fmt.Errorf("link message of %d bytes, shorter than its header", len(b))
	}
	l.Index = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	l.Flags = binary.NativeEndian.Uint32(b[8:12])
	err := nlsock.ForAttrs(b[ifinfomsgLen:], func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case iflaIfname:
			l.Name = nlsock.CString(v)
		case iflaMTU:
			l.MTU, err = attrInt(v)
		case iflaLink:
			l.Parent, err = attrInt(v)
		case iflaMaster:
			l.Master, err = attrInt(v)
		case iflaTxQLen:
			l.TxQLen, err = attrInt(v)
		case iflaGroup:
			l.Group, err = attrU32(v)
		case iflaNetNsID: // s32
			var n uint32
			n, err = attrU32(v)
			l.NetNsID = int(int32(n))
		case iflaOperState:
			if len(v) < 1 {
				return errors.New("empty operational state")
			}
			l.OperState = int(v[0])
		}
		return err
	})
	return l, err
}

// addrMsg is one address of a link.
type addrMsg struct {
	Family byte
	Index  int
	ipAddr
}

// parseAddrMsg decodes the payload of an RTM_NEWADDR message. As in
// iproute2, IFA_LOCAL is the address and IFA_ADDRESS, when different, the
// point-to-point peer; IPv6 often sends only IFA_ADDRESS.
func parseAddrMsg(b []byte) (addrMsg, error) {
	var a addrMsg
	if len(b) < ifaddrmsgLen {
		return a, fmt.Errorf("address message of %d bytes, shorter than its header", len(b))
	}
	a.Family, a.Scope = b[0], int(b[3])
	bits, n := int(b[1]), addrLen(b[0])
	if bits > 8*n {
		return a, fmt.Errorf("prefix length %d", bits)
	}
	a.Flags = uint32(b[2])
	a.Index = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	var local, address netip.Addr
	err := nlsock.ForAttrs(b[ifaddrmsgLen:], func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case ifaAddress:
			address, err = attrAddr(v, n)
		case ifaLocal:
			local, err = attrAddr(v, n)
		case ifaBroadcast:
			a.Broadcast, err = attrAddr(v, n)
		case ifaLabel:
			a.Label = nlsock.CString(v)
		case ifaFlags:
			a.Flags, err = attrU32(v)
		case ifaCacheinfo: // struct ifa_cacheinfo: preferred, valid, …
			if len(v) < 8 {
				return errors.New("short cache info")
			}
			a.Pref, a.Valid = binary.NativeEndian.Uint32(v), binary.NativeEndian.Uint32(v[4:])
		}
		return err
	})
	if err != nil {
		return a, err
	}
	switch {
	case !local.IsValid():
		a.Prefix = netip.PrefixFrom(address, bits)
	case address.IsValid() && address != local:
		a.Prefix, a.Peer = netip.PrefixFrom(local, bits), netip.PrefixFrom(address, bits)
	default:
		a.Prefix = netip.PrefixFrom(local, bits)
	}
	a.Broadcast = a.Broadcast.Unmap()
	return a, nil
}

// parseRouteMsg decodes the payload of an RTM_NEWROUTE message; name
// turns device indexes into names. ok is false for cloned routes (route
// cache entries, which ip route show leaves out too). A route without
// RTA_DST is the default route of its family.
func parseRouteMsg(b []byte, name func(int) string) (r ipRoute, ok bool, err error) {
	if len(b) < rtmsgLen {
		return r, false, fmt.Errorf("route message of %d bytes, shorter than its header", len(b))
	}
	n, dstLen := addrLen(b[0]), int(b[1])
	if dstLen > 8*n {
		return r, false, fmt.Errorf("prefix length %d", dstLen)
	}
	flags := binary.NativeEndian.Uint32(b[8:12])
	r = ipRoute{Table: int(b[4]), Proto: int(b[5]), Scope: int(b[6]), Type: int(b[7]), Flags: int(flags)}
	dst := netip.IPv4Unspecified()
	if n == 16 {
		dst = netip.IPv6Unspecified()
	}
	err = nlsock.ForAttrs(b[rtmsgLen:], func(typ uint16, v []byte) error {
		var err error
		var i int
		switch typ {
		case rtaDst:
			dst, err = attrAddr(v, n)
		case rtaGateway:
			r.Gw, err = attrAddr(v, n)
		case rtaOIF:
			i, err = attrInt(v)
			r.Dev = name(i)
		case rtaPrefSrc:
			r.Src, err = attrAddr(v, n)
		case rtaPriority:
			r.Metric, err = attrInt(v)
		case rtaTable:
			r.Table, err = attrInt(v)
		case rtaMultiPath:
			r.Hops, err = parseNexthops(v, n, name)
		}
		return err
	})
	if err != nil {
		return ipRoute{}, false, err
	}
	r.Dst = netip.PrefixFrom(dst, dstLen)
	return r, flags&rtmFCloned == 0, nil
}

// parseNexthops decodes RTA_MULTIPATH: struct rtnexthop (length, flags,
// hops, ifindex), each followed by its attributes.
func parseNexthops(b []byte, n int, name func(int) string) ([]ipNexthop, error) {
	var hops []ipNexthop
	for len(b) > 0 {
		if len(b) < rtnexthopLen {
			return nil, fmt.Errorf("nexthop of %d bytes", len(b))
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < rtnexthopLen || l > len(b) {
			return nil, fmt.Errorf("nexthop length %d in %d bytes", l, len(b))
		}
		h := ipNexthop{Flags: int(b[2]), Weight: int(b[3]) + 1, Dev: name(int(int32(binary.NativeEndian.Uint32(b[4:8]))))}
		err := nlsock.ForAttrs(b[rtnexthopLen:l], func(typ uint16, v []byte) error {
			var err error
			if typ == rtaGateway {
				h.Gw, err = attrAddr(v, n)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
		b = b[min((l+3)&^3, len(b)):]
	}
	return hops, nil
}
