package track

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// The nslookup probe's DNS: one question (NS records of a name, class IN)
// out and the header and question of the answer in (RFC 1035 §4.1). Written
// here rather than with golang.org/x/net/dns/dnsmessage, which adds 20 KB to
// the binary for these few bytes.

const (
	dnsHeaderLen = 12
	dnsTypeNS    = 2
	dnsClassIN   = 1
	dnsFlagQR    = 1 << 15 // a response
	dnsFlagRD    = 1 << 8  // recursion desired
	dnsMaxName   = 255     // bytes of a name in wire format
	dnsMaxLabel  = 63
)

// dnsName encodes a domain name ("example.org", "example.org." or "." for
// the root) in wire format: length-prefixed labels and the empty root label.
func dnsName(name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("empty name")
	}
	if name[len(name)-1] != '.' {
		name += "."
	}
	out := make([]byte, 0, len(name)+1)
	if name != "." {
		start := 0
		for i := range len(name) {
			if name[i] != '.' {
				continue
			}
			n := i - start
			if n == 0 || n > dnsMaxLabel {
				return nil, fmt.Errorf("label %q: length %d is not 1 to %d", name[start:i], n, dnsMaxLabel)
			}
			out = append(out, byte(n))
			out = append(out, name[start:i]...)
			start = i + 1
		}
	}
	out = append(out, 0)
	if len(out) > dnsMaxName {
		return nil, fmt.Errorf("%d bytes long, more than %d", len(out), dnsMaxName)
	}
	return out, nil
}

// newDNSQuery is a query with id, recursion desired, for the NS records of
// qname (wire format).
func newDNSQuery(id uint16, qname []byte) []byte {
	b := make([]byte, dnsHeaderLen, dnsHeaderLen+len(qname)+4)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], dnsFlagRD)
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	b = append(b, qname...)
	b = binary.BigEndian.AppendUint16(b, dnsTypeNS)
	return binary.BigEndian.AppendUint16(b, dnsClassIN)
}

// checkDNSAnswer decides on a datagram received for the query (id, qname):
// true for an answer with RCODE NOERROR or NXDOMAIN; false with the
// reason for another RCODE; errIgnore for anything that is not an answer
// to it (another ID, not a response, another question, garbage).
func checkDNSAnswer(b []byte, id uint16, qname []byte) (bool, error) {
	if len(b) < dnsHeaderLen {
		return false, errIgnore
	}
	flags := binary.BigEndian.Uint16(b[2:])
	if binary.BigEndian.Uint16(b) != id || flags&dnsFlagQR == 0 || binary.BigEndian.Uint16(b[4:]) == 0 {
		return false, errIgnore
	}
	q := b[dnsHeaderLen:]
	// The question's name is the first name of the message: no
	// compression pointer can refer to an earlier one.
	if len(q) < len(qname)+4 || !equalFoldName(q[:len(qname)], qname) ||
		binary.BigEndian.Uint16(q[len(qname):]) != dnsTypeNS ||
		binary.BigEndian.Uint16(q[len(qname)+2:]) != dnsClassIN {
		return false, errIgnore
	}
	switch rc := flags & 0xf; rc {
	case 0, 3: // NOERROR, NXDOMAIN
		return true, nil
	default:
		return false, fmt.Errorf("server answered %s", rcodeName(rc))
	}
}

// rcodeName names a DNS RCODE as x/net's dnsmessage did.
func rcodeName(rc uint16) string {
	switch rc {
	case 1:
		return "RCodeFormatError"
	case 2:
		return "RCodeServerFailure"
	case 4:
		return "RCodeNotImplemented"
	case 5:
		return "RCodeRefused"
	}
	return "RCode" + strconv.Itoa(int(rc))
}

// equalFoldName compares two names in wire format, ASCII letters in
// either case being equal (RFC 4343). Length bytes are at most 63, below
// 'A', so they compare exactly.
func equalFoldName(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
