package nft

import (
	"fmt"
	"strconv"
	"strings"
)

// Transport protocol numbers used by the renderer.
const (
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// protoNames are the IANA protocol names of /etc/protocols (Debian netbase
// and OpenWrt ship the same list), which nft uses to print `meta l4proto`.
var protoNames = map[uint8]string{
	0: "ip", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp",
	12: "pup", 17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp",
	37: "ddp", 38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp",
	47: "gre", 50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts",
	73: "rspf", 81: "vmtp", 88: "eigrp", 89: "ospf", 93: "ax.25", 94: "ipip", 97: "etherip",
	98: "encap", 103: "pim", 108: "ipcomp", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp",
	133: "fc", 135: "mobility-header", 136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip",
	140: "shim6", 141: "wesp", 142: "rohc", 143: "ethernet",
}

// protoAliases are the other names /etc/protocols (and iptables) accept.
var protoAliases = map[string]uint8{
	"hopopt": 0, "icmpv6": 58, "ipv6-icmp": 58, "ipv4": 4, "ospfigp": 89, "ipv6-nonxt": 59,
	"ipv6-opts": 60, "ipv6-route": 43, "ipv6-frag": 44, "mh": 135,
}

// protoName returns the name nft prints for a protocol number.
func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// ParseProto parses a rule's proto option: a protocol name (case
// insensitive, as in /etc/protocols) or a number 0…255. "all" and the
// empty string mean "any protocol" and return ok == false.
func ParseProto(s string) (proto uint8, ok bool, err error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "all" {
		return 0, false, nil
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), true, nil
	}
	if p, found := protoAliases[s]; found {
		return p, true, nil
	}
	for p, n := range protoNames {
		if n == s {
			return p, true, nil
		}
	}
	return 0, false, fmt.Errorf("unknown protocol %q", s)
}
