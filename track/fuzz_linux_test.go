//go:build linux

package track

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func echoReplyPacket(v6, raw bool, id, seq uint16) []byte {
	b := make([]byte, 8+8)
	b[0] = icmpv4EchoReply
	if v6 {
		b[0] = icmpv6EchoReply
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	if raw && !v6 {
		ip := make([]byte, 20, 20+len(b))
		ip[0] = 0x45
		b = append(ip, b...)
	}
	return b
}

func TestParseEchoReply(t *testing.T) {
	tests := []struct {
		name    string
		pkt     []byte
		v6, raw bool
		seq     int
		ok      bool
	}{
		{"raw v4", echoReplyPacket(false, true, 7, 3), false, true, 3, true},
		{"raw v4 other id", echoReplyPacket(false, true, 8, 3), false, true, 0, false},
		{"ping socket v4 (id rewritten by the kernel)", echoReplyPacket(false, false, 99, 2), false, false, 2, true},
		{"raw v6", echoReplyPacket(true, true, 7, 1), true, true, 1, true},
		{"v6 reply on a v4 socket", echoReplyPacket(true, false, 7, 1), false, false, 0, false},
		{"truncated", echoReplyPacket(false, true, 7, 3)[:25], false, true, 0, false},
		{"empty", nil, false, true, 0, false},
		{"bad checksum", func() []byte { b := echoReplyPacket(false, true, 7, 3); b[27] ^= 0xff; return b }(), false, true, 0, false},
		{"IHL too small", func() []byte { b := echoReplyPacket(false, true, 7, 3); b[0] = 0x41; return b }(), false, true, 0, false},
		{"echo request", func() []byte { b := echoReplyPacket(true, true, 7, 3); b[0] = icmpv6EchoRequest; return b }(), true, true, 0, false},
	}
	for _, tc := range tests {
		seq, err := parseEchoReply(tc.pkt, tc.v6, tc.raw, 7)
		if (err == nil) != tc.ok || (tc.ok && seq != tc.seq) {
			t.Errorf("%s: seq %d err %v, want seq %d ok %v", tc.name, seq, err, tc.seq, tc.ok)
		}
	}
}

func FuzzParseEchoReply(f *testing.F) {
	f.Add(echoReplyPacket(false, true, 7, 3), false, true)
	f.Add(echoReplyPacket(true, true, 7, 3), true, true)
	f.Add(echoReplyPacket(false, false, 7, 3), false, false)
	f.Add([]byte{0x4f}, false, true)
	f.Fuzz(func(t *testing.T, b []byte, v6, raw bool) {
		seq, err := parseEchoReply(b, v6, raw, 7)
		if err == nil && (seq < 0 || seq > 0xffff) {
			t.Fatalf("sequence %d", seq)
		}
	})
}

func dnsQuery(id uint16, name string) (dnsmessage.Question, []byte) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeNS, Class: dnsmessage.ClassINET}
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: id, Response: true}, Questions: []dnsmessage.Question{q}}
	b, _ := m.Pack()
	return q, b
}

func TestCheckDNSAnswer(t *testing.T) {
	q, ok := dnsQuery(5, ".")
	if got, err := checkDNSAnswer(ok, 5, q); !got || err != nil {
		t.Errorf("answer: %v %v", got, err)
	}
	if _, err := checkDNSAnswer(ok, 6, q); err != errIgnore {
		t.Errorf("other id: %v", err)
	}
	_, upper := dnsQuery(5, "EXAMPLE.org.")
	qLower, _ := dnsQuery(5, "example.ORG.")
	if got, err := checkDNSAnswer(upper, 5, qLower); !got || err != nil {
		t.Errorf("case-insensitive name: %v %v", got, err)
	}
	if _, err := checkDNSAnswer([]byte("garbage"), 5, q); err != errIgnore {
		t.Errorf("garbage: %v", err)
	}
}

func FuzzCheckDNSAnswer(f *testing.F) {
	q, b := dnsQuery(5, ".")
	f.Add(b)
	f.Add([]byte{0, 5, 0x80, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ok, err := checkDNSAnswer(b, 5, q)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
	})
}

func FuzzARPReply(f *testing.F) {
	// A reply from 10.0.1.1 (Ethernet/IPv4, 28 bytes).
	f.Add([]byte{0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 1, 1, 2, 0, 0, 0, 0, 2, 10, 0, 1, 2})
	f.Add([]byte{0, 1, 8, 0, 255, 4, 0, 2})
	dst := netip.MustParseAddr("10.0.1.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = isARPReplyFrom(b, dst)
	})
}

func TestARPReply(t *testing.T) {
	reply := []byte{0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 1, 1, 2, 0, 0, 0, 0, 2, 10, 0, 1, 2}
	if !isARPReplyFrom(reply, netip.MustParseAddr("10.0.1.1")) {
		t.Error("reply not recognised")
	}
	if isARPReplyFrom(reply, netip.MustParseAddr("10.0.1.9")) {
		t.Error("reply from another host accepted")
	}
	req := append([]byte(nil), reply...)
	req[7] = 1
	if isARPReplyFrom(req, netip.MustParseAddr("10.0.1.1")) {
		t.Error("request accepted as a reply")
	}
}
