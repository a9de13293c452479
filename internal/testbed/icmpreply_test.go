package testbed

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
)

// request4 builds an IPv4 ICMP packet (type typ) from src to dst.
func request4(src, dst netip.Addr, typ byte, payload string) []byte {
	icmp := append([]byte{typ, 0, 0, 0, 0x12, 0x34, 0, 7}, payload...)
	binary.BigEndian.PutUint16(icmp[2:], checksum(0, icmp))
	h := make([]byte, ipv4HeaderLen)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(ipv4HeaderLen+len(icmp)))
	h[8], h[9] = 63, protoICMP
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], checksum(0, h))
	return append(h, icmp...)
}

// request6 builds an IPv6 ICMPv6 packet (type typ) from src to dst.
func request6(src, dst netip.Addr, typ byte, payload string) []byte {
	icmp := append([]byte{typ, 0, 0, 0, 0x12, 0x34, 0, 7}, payload...)
	h := make([]byte, ipv6HeaderLen)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(icmp)))
	h[6], h[7] = protoICMPv6, 63
	copy(h[8:], src.AsSlice())
	copy(h[24:], dst.AsSlice())
	binary.BigEndian.PutUint16(icmp[2:], checksum(pseudoSum6(h[8:24], h[24:40], len(icmp)), icmp))
	return append(h, icmp...)
}

// checkReply verifies that reply answers req: addresses swapped, valid
// checksums, echo reply type, same identifier, sequence and data.
func checkReply(t *testing.T, req, reply []byte) {
	t.Helper()
	var reqMsg, msg []byte
	switch reply[0] >> 4 {
	case 4:
		if len(reply) < ipv4HeaderLen || checksum(0, reply[:ipv4HeaderLen]) != 0 {
			t.Fatalf("bad IPv4 header checksum in %x", reply)
		}
		if int(binary.BigEndian.Uint16(reply[2:])) != len(reply) || reply[9] != protoICMP {
			t.Fatalf("bad IPv4 header %x", reply[:ipv4HeaderLen])
		}
		if !bytes.Equal(reply[12:16], req[16:20]) || !bytes.Equal(reply[16:20], req[12:16]) {
			t.Fatalf("addresses not swapped: %x for %x", reply[12:20], req[12:20])
		}
		ihl := int(req[0]&0x0f) * 4
		reqMsg = req[ihl:binary.BigEndian.Uint16(req[2:])]
		msg = reply[ipv4HeaderLen:]
		if checksum(0, msg) != 0 || msg[0] != icmpEchoReply {
			t.Fatalf("bad ICMP reply %x", msg)
		}
	case 6:
		msg = reply[ipv6HeaderLen:]
		if int(binary.BigEndian.Uint16(reply[4:])) != len(msg) || reply[6] != protoICMPv6 {
			t.Fatalf("bad IPv6 header %x", reply[:ipv6HeaderLen])
		}
		if !bytes.Equal(reply[8:24], req[24:40]) || !bytes.Equal(reply[24:40], req[8:24]) {
			t.Fatalf("addresses not swapped")
		}
		reqMsg = req[ipv6HeaderLen : ipv6HeaderLen+int(binary.BigEndian.Uint16(req[4:]))]
		if checksum(pseudoSum6(reply[8:24], reply[24:40], len(msg)), msg) != 0 || msg[0] != icmp6EchoReply {
			t.Fatalf("bad ICMPv6 reply %x", msg)
		}
	default:
		t.Fatalf("reply is not IP: %x", reply)
	}
	if !bytes.Equal(msg[4:], reqMsg[4:]) {
		t.Errorf("reply body %x, want %x", msg[4:], reqMsg[4:])
	}
}

func TestChecksumKnownVector(t *testing.T) {
	// An IPv4 header whose checksum field (b861) is zeroed.
	h, _ := hex.DecodeString("450000730000400040110000c0a80001c0a800c7")
	if got := checksum(0, h); got != 0xb861 {
		t.Errorf("checksum = %#04x, want 0xb861", got)
	}
	if got := checksum(0, []byte{0xff}); got != 0x00ff {
		t.Errorf("checksum of an odd byte = %#04x, want 0x00ff", got)
	}
}

func TestEchoReply(t *testing.T) {
	lan4, tgt4 := netip.MustParseAddr("192.168.1.100"), netip.MustParseAddr("198.51.100.1")
	lan6, tgt6 := netip.MustParseAddr("fd00:100::100"), netip.MustParseAddr("2001:db8:ff::1")
	other4, other6 := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("fd00:1::1")
	fragment := request4(lan4, tgt4, icmpEchoRequest, "x")
	fragment[6] = 0x20 // more fragments
	withOptions := request4(lan4, tgt4, icmpEchoRequest, "opt")
	withOptions = append(append(append([]byte{}, withOptions[:20]...), 1, 1, 1, 0), withOptions[20:]...)
	withOptions[0] = 0x46
	binary.BigEndian.PutUint16(withOptions[2:], uint16(len(withOptions)))
	trailing := append(request4(lan4, tgt4, icmpEchoRequest, "pad"), 0, 0, 0, 0) // link padding
	code1 := request6(lan6, tgt6, icmp6EchoReq, "c")
	code1[ipv6HeaderLen+1] = 1
	extHeader := request6(lan6, tgt6, icmp6EchoReq, "e")
	extHeader[6] = 0 // hop-by-hop options

	tests := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"IPv4 echo request", request4(lan4, tgt4, icmpEchoRequest, "mwan3d"), true},
		{"IPv4 with options", withOptions, true},
		{"IPv4 with trailing padding", trailing, true},
		{"IPv4 empty payload", request4(lan4, tgt4, icmpEchoRequest, ""), true},
		{"IPv6 echo request", request6(lan6, tgt6, icmp6EchoReq, "mwan3d"), true},
		{"IPv4 to a non-public address", request4(lan4, other4, icmpEchoRequest, "x"), false},
		{"IPv6 to a non-public address", request6(lan6, other6, icmp6EchoReq, "x"), false},
		{"IPv4 echo reply", request4(tgt4, lan4, icmpEchoReply, "x"), false},
		{"IPv6 echo reply", request6(tgt6, lan6, icmp6EchoReply, "x"), false},
		{"IPv4 fragment", fragment, false},
		{"IPv6 code 1", code1, false},
		{"IPv6 extension header", extHeader, false},
		{"truncated IPv4", request4(lan4, tgt4, icmpEchoRequest, "abc")[:26], false},
		{"truncated IPv6", request6(lan6, tgt6, icmp6EchoReq, "abc")[:45], false},
		{"empty", nil, false},
		{"not IP", []byte{0x10, 0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, ok := echoReply(tt.pkt, isPublic)
			if ok != tt.ok {
				t.Fatalf("echoReply ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			checkReply(t, tt.pkt, reply)
			if _, again := echoReply(reply, func(netip.Addr) bool { return true }); again {
				t.Error("a reply was taken for a request")
			}
		})
	}
}

func FuzzEchoReply(f *testing.F) {
	lan4, tgt4 := netip.MustParseAddr("192.168.1.100"), netip.MustParseAddr("198.51.100.1")
	lan6, tgt6 := netip.MustParseAddr("fd00:100::100"), netip.MustParseAddr("2001:db8:ff::1")
	f.Add(request4(lan4, tgt4, icmpEchoRequest, "seed"))
	f.Add(request6(lan6, tgt6, icmp6EchoReq, "seed"))
	f.Add(request4(lan4, tgt4, icmpEchoRequest, "")[:21])
	f.Add([]byte{0x4f})
	f.Add([]byte{0x60, 0, 0, 0, 0xff, 0xff, 58})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		reply, ok := echoReply(pkt, func(netip.Addr) bool { return true })
		if !ok {
			return
		}
		if len(reply) > len(pkt) {
			t.Fatalf("reply of %d bytes to a request of %d", len(reply), len(pkt))
		}
		checkReply(t, pkt, reply)
	})
}

func BenchmarkEchoReply(b *testing.B) {
	pkt := request4(netip.MustParseAddr("192.168.1.100"), netip.MustParseAddr("198.51.100.1"), icmpEchoRequest, "0123456789abcdef0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := echoReply(pkt, isPublic); !ok {
			b.Fatal("no reply")
		}
	}
}
