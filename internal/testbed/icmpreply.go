package testbed

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers and ICMP types used by the latency responder.
const (
	protoICMP       = 1
	protoICMPv6     = 58
	icmpEchoRequest = 8
	icmpEchoReply   = 0
	icmp6EchoReq    = 128
	icmp6EchoReply  = 129
	replyHopLimit   = 64
	ipv4HeaderLen   = 20
	ipv6HeaderLen   = 40
	icmpHeaderLen   = 8
)

// isPublic reports whether a is one of the internet host's addresses.
func isPublic(a netip.Addr) bool { return publicNet4.Contains(a) || publicNet6.Contains(a) }

// echoReply builds the answer to an ICMP or ICMPv6 echo request, as the
// request's destination would send it. pkt starts at the IPv4 or IPv6
// header. ok is false when pkt is not a well-formed, unfragmented echo
// request (IPv6: without extension headers) to an address answer accepts.
func echoReply(pkt []byte, answer func(netip.Addr) bool) (reply []byte, ok bool) {
	if len(pkt) < 1 {
		return nil, false
	}
	switch pkt[0] >> 4 {
	case 4:
		return echoReply4(pkt, answer)
	case 6:
		return echoReply6(pkt, answer)
	}
	return nil, false
}

func echoReply4(pkt []byte, answer func(netip.Addr) bool) ([]byte, bool) {
	if len(pkt) < ipv4HeaderLen {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	fragment := binary.BigEndian.Uint16(pkt[6:8]) & 0x3fff // MF flag and offset
	if ihl < ipv4HeaderLen || total < ihl+icmpHeaderLen || total > len(pkt) || fragment != 0 ||
		pkt[9] != protoICMP {
		return nil, false
	}
	src := netip.AddrFrom4([4]byte(pkt[12:16]))
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	msg := pkt[ihl:total]
	if msg[0] != icmpEchoRequest || msg[1] != 0 || !answer(dst) {
		return nil, false
	}
	reply := make([]byte, ipv4HeaderLen+len(msg))
	h := reply[:ipv4HeaderLen]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(len(reply)))
	h[8] = replyHopLimit
	h[9] = protoICMP
	copy(h[12:16], dst.AsSlice())
	copy(h[16:20], src.AsSlice())
	binary.BigEndian.PutUint16(h[10:12], checksum(0, h))
	icmp := reply[ipv4HeaderLen:]
	copy(icmp, msg)
	icmp[0] = icmpEchoReply
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:4], checksum(0, icmp))
	return reply, true
}

func echoReply6(pkt []byte, answer func(netip.Addr) bool) ([]byte, bool) {
	if len(pkt) < ipv6HeaderLen {
		return nil, false
	}
	plen := int(binary.BigEndian.Uint16(pkt[4:6]))
	if plen < icmpHeaderLen || ipv6HeaderLen+plen > len(pkt) || pkt[6] != protoICMPv6 {
		return nil, false
	}
	src := netip.AddrFrom16([16]byte(pkt[8:24]))
	dst := netip.AddrFrom16([16]byte(pkt[24:40]))
	msg := pkt[ipv6HeaderLen : ipv6HeaderLen+plen]
	if msg[0] != icmp6EchoReq || msg[1] != 0 || !answer(dst) {
		return nil, false
	}
	reply := make([]byte, ipv6HeaderLen+len(msg))
	h := reply[:ipv6HeaderLen]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(len(msg)))
	h[6] = protoICMPv6
	h[7] = replyHopLimit
	copy(h[8:24], dst.AsSlice())
	copy(h[24:40], src.AsSlice())
	icmp := reply[ipv6HeaderLen:]
	copy(icmp, msg)
	icmp[0] = icmp6EchoReply
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:4], checksum(pseudoSum6(h[8:24], h[24:40], len(icmp)), icmp))
	return reply, true
}

// pseudoSum6 is the partial sum of the ICMPv6 pseudo-header.
func pseudoSum6(src, dst []byte, length int) uint32 {
	var s uint32
	for i := 0; i < 16; i += 2 {
		s += uint32(binary.BigEndian.Uint16(src[i:])) + uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	return s + uint32(length>>16) + uint32(length&0xffff) + protoICMPv6
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial.
func checksum(initial uint32, b []byte) uint16 {
	s := initial
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
